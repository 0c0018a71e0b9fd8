import Magstripe

/// Test cards built only from published test PANs (card-network test numbers).
enum Cards {
    static let track1 = "%B4111111111111111^CARDHOLDER/TEST A^2812101000000000000000123456?"
    static let track2 = ";4111111111111111=28121010000012345678?"
    /// A Track 3 in the ISO 4909 shape: 104 characters, so with its LRC it fills the track.
    static let track3 = ";011234567890123445=724724100000000000030300000040400099010=000000000000000000000000==1=0000000000000?"
    /// UnionPay-style number that fails Luhn and is still valid under the PAN rule.
    static let unionPayNoLuhn = "6212345678901234"
    static let unionPayTrack2 = ";6212345678901234=30122010000000000000?"

    static func text(_ format: TrackFormat) -> String {
        switch format {
        case .track1: track1
        case .track2: track2
        case .track3: track3
        }
    }
}

/// A small deterministic generator for test data (SplitMix64).
struct TestRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
