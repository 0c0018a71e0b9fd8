public import Secrets

/// What of a track may be shown: the PAN's first and last digits, the name, the expiry and the
/// service code. The discretionary data (it can hold card verification values) and every
/// character of a non-payment track are masked.
public struct MaskedTrack: Sendable, Hashable {
    public let format: TrackFormat
    /// The track text with the sensitive characters replaced by `*`, sentinels kept.
    public let text: String
    /// The masked PAN (payment tracks only).
    public let pan: String?
    public let name: String?
    /// `YYMM`.
    public let expiry: String?
    public let serviceCode: String?

    /// A track text masked whole except its sentinels: for non-payment tracks and for text that
    /// failed to parse.
    public static func whole(_ text: SecretText, format: TrackFormat) -> MaskedTrack {
        let n = text.count
        let masked = n >= 2
            ? format.startSentinel.description + String(repeating: "*", count: n - 2) + format.endSentinel.description
            : String(repeating: "*", count: n)
        return MaskedTrack(format: format, text: masked, pan: nil, name: nil, expiry: nil, serviceCode: nil)
    }

    public static func whole(_ text: String, format: TrackFormat) -> MaskedTrack {
        whole(SecretText(copying: Array(text.utf8)), format: format)
    }
}

extension PaymentTrack {
    public func masked(_ policy: MaskPolicy = .standard) -> MaskedTrack {
        let pan = self.pan.masked(policy)
        let hidden = String(repeating: "*", count: discretionary.count)
        let text: String
        switch format {
        case .track1:
            text = "%B\(pan)^\(name ?? "")^\(expiry)\(serviceCode)\(hidden)?"
        case .track2, .track3:
            text = ";\(pan)=\(expiry)\(serviceCode)\(hidden)?"
        }
        return MaskedTrack(format: format, text: text, pan: pan, name: name,
                           expiry: expiry.description, serviceCode: serviceCode.digits)
    }
}

extension TrackContent {
    public func masked(_ policy: MaskPolicy = .standard) -> MaskedTrack {
        switch self {
        case .payment(let p): p.masked(policy)
        case .nonPayment(let r): .whole(r.text, format: r.format)
        }
    }
}
