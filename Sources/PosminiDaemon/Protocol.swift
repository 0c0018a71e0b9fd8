import Magstripe
import SwipeDecoder
import PosminiProtocol

/// The card fields a POS app may see: never the PAN, never the track text.
enum CardMessage {
    static func card(_ swipe: Swipe, reader: String, reference: String?) -> JSONValue {
        var fields: [String: JSONValue] = ["class": "CARD", "reader": .string(reader)]
        if let reference { fields["reference"] = .string(reference) }
        let read = swipe.readTracks
        // The first payment track gives the card's fields; otherwise it is not a payment card.
        if let payment = read.lazy.compactMap({ track -> MaskedTrack? in
            if case .payment = track.content { return track.masked }
            return nil
        }).first {
            fields["card_type"] = "payment"
            if let pan = payment.pan {
                fields["masked_pan"] = .string(pan)
                fields["last4"] = .string(String(pan.suffix(4)))
            }
            if let expiry = payment.expiry { fields["expiry"] = .string(expiry) }
            if let code = payment.serviceCode { fields["service_code"] = .string(code) }
            if let name = payment.name, !name.isEmpty { fields["name"] = .string(name) }
        } else {
            fields["card_type"] = "nonPayment"
        }
        fields["tracks"] = .array(swipe.tracks.map(track))
        fields["quality"] = quality(swipe)
        return .object(fields)
    }

    static func track(_ t: TrackRead) -> JSONValue {
        var fields: [String: JSONValue] = ["status": .string(t.status.code), "corrected": .number(Double(t.corrections))]
        if let format = t.format { fields["track"] = .number(Double(format.rawValue)) }
        if t.isOK, let masked = t.masked { fields["masked"] = .string(masked.text) }
        return .object(fields)
    }

    static func quality(_ swipe: Swipe) -> JSONValue {
        var fields: [String: JSONValue] = ["snr_db": .number((swipe.quality.snrDB * 10).rounded() / 10)]
        if let direction = swipe.direction { fields["direction"] = .string(direction.rawValue) }
        if let speed = swipe.speed { fields["speed_cm_s"] = .number((speed.mean * 10).rounded() / 10) }
        return .object(fields)
    }

    /// A bad read: what a person can do about it, and no card data.
    static func failed(_ swipe: Swipe, reader: String, reference: String?) -> JSONValue {
        var fields: [String: JSONValue] = ["class": "SWIPE_FAILED", "reader": .string(reader),
                                           "reason": .string(swipe.problem?.rawValue ?? "unreadable"),
                                           "quality": quality(swipe)]
        if let reference { fields["reference"] = .string(reference) }
        return .object(fields)
    }
}
