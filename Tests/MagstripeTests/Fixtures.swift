import Magstripe
@_exported import TestSupport

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
