import { z } from 'zod'
import { Experiment, defineAgent, defineSurvey } from '../src/index.js'
import { startLLMServer } from '../src/testing/index.js'
const server = await startLLMServer()
const A = defineAgent({ name: 'a', profile: z.object({}), state: {} })
const s = defineSurvey({ name: 'm', questions: [{ id: 'h', kind: 'likert', text: 'x' }] })
const exp = new Experiment({ name: 's', population: [{ agent: A, count: 2, profiles: [{}, {}] }], llm: { providers: [{ name: 'test', baseUrl: server.url, models: ['test'] }] }, sink: { archive: '/tmp/s1run' } })
const sc = exp.survey(s)
try { console.log(await exp.run({ ticks: 1 })) } catch (e) { console.error('ERR', e) }
console.log(await sc.done)
await server.close()
