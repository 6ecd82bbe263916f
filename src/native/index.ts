// The binding and the ONNX Runtime it loads: what the components are built on.
export { native, defaults, requireNative, type Binding } from './binding.js'
export { callNative, fromNative } from './call.js'
export { initRuntime, onnxRuntimePath, type RuntimeInfo } from './onnx-runtime.js'
