// What a `myriad` command is: a name, a line for the command list, its --help text (with
// examples), and a function from its arguments to an exit code.
export interface Command {
  name: string
  summary: string
  usage: string
  run(argv: string[]): Promise<number>
}

/**
 * Exit codes (docs/reference/cli.md): 0 done; 1 the run failed after it started; 2 bad usage or
 * input refused before anything started (config, agents module, unreachable LLM); 130 stopped by
 * Ctrl-C after the records were flushed.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const
