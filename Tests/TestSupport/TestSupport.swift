import ReaderIO

/// A whole file, or nil when it cannot be read (tests report the missing file themselves).
public func readFile(_ path: String) -> [UInt8]? {
    try? FileBytes.read(path)
}

/// Published test card numbers only: the tracks the test suites swipe.
public let track1Text = "%B4111111111111111^CARDHOLDER/TEST A^2812101000000000000000123456?"
public let track2Text = ";4111111111111111=28121010000012345678?"
public let track3Text = ";011234567890123445=724724100000000000030300000040400099010=000000000000000000000000==1=0000000000000?"

/// Writes a file whole (tests' fixtures in /tmp).
public func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try FileBytes.write(bytes, to: path)
}

/// This process's id, for unique fixture names.
public func getpidValue() -> Int32 { FileBytes.processID }

/// A file's text (empty when it cannot be read).
public func readText(_ path: String) -> String {
    String(decoding: readFile(path) ?? [], as: UTF8.self)
}

/// A small deterministic generator for test data (SplitMix64).
public struct TestRandom: RandomNumberGenerator {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }
    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
