import CFuzzDriver
import PosminiFuzzing
#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's entry point: `FuzzHarness.wav` on each input (Sources/PosminiFuzzing).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHarness.wav(UnsafeBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
