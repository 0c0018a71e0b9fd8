import Magstripe
import SwipeDecoder
import PosminiProtocol
import ReaderPipeline

/// The card fields a POS app may see: never the PAN, never a payment card's track text.
enum CardMessage {
    /// `clearNonPayment` (`clear_non_payment = true`): a card without a payment track gives its
    /// tracks' clear text, except a track that holds what may be a PAN.
    static func card(_ swipe: Swipe, reader: String, reference: String?, clearNonPayment: Bool = false) -> CardEvent {
        // The first payment track gives the card's fields; otherwise it is not a payment card.
        let payment = swipe.readTracks.lazy.compactMap { track -> (PaymentTrack, MaskedTrack)? in
            if case .payment(let p) = track.content, let masked = track.masked { return (p, masked) }
            return nil
        }.first
        let figures = SwipeFigures(swipe)
        var card = CardEvent(reader: reader, reference: reference, cardType: payment == nil ? .nonPayment : .payment,
                             tracks: figures.tracks, quality: figures.summary)
        if let (track, masked) = payment {
            if let pan = masked.pan {
                card.maskedPAN = pan
                card.last4 = String(pan.suffix(4))
            }
            card.iin = track.pan.iin
            card.expiry = masked.expiry
            card.serviceCode = masked.serviceCode
            card.service = ServiceSummary(track.serviceCode)
            if let name = masked.name, !name.isEmpty { card.name = name }
        } else if clearNonPayment {
            for (i, t) in swipe.tracks.enumerated() where t.isOK {
                guard let text = t.text, !text.bytes.withUnsafeBytes(mayHoldPAN) else { continue }
                card.tracks[i].text = text.bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            }
        }
        return card
    }

    /// A run of 12 to 19 digits that passes the Luhn check (or starts `62`, UnionPay's numbers,
    /// which need not): a PAN in a layout that was not parsed as a payment card. Such a track
    /// is never given in clear.
    static func mayHoldPAN(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        var start = 0
        while start < text.count {
            guard text[start] >= 0x30 && text[start] <= 0x39 else { start += 1; continue }
            var end = start
            while end < text.count, text[end] >= 0x30 && text[end] <= 0x39 { end += 1 }
            let run = UnsafeBufferPointer(rebasing: text[start..<end])
            if (PAN.minimumLength...PAN.maximumLength).contains(run.count),
               PAN.luhnValid(run) || (run[0] == 0x36 && run[1] == 0x32) { return true }
            start = end
        }
        return false
    }

    /// A bad read: what a person can do about it, and no card data.
    static func failed(_ swipe: Swipe, reader: String, reference: String?) -> SwipeFailure {
        let figures = SwipeFigures(swipe)
        return SwipeFailure(reader: reader, reference: reference, reason: figures.reason, quality: figures.summary)
    }
}

extension ServiceSummary {
    /// The service code's three digits as ISO/IEC 7813 defines them.
    init(_ code: ServiceCode) {
        self.init(chip: code.hasChip, interchange: code.interchange.rawValue, authorization: code.authorization.rawValue,
                  services: code.services.rawValue, pinRequired: code.pinRequired, pinWherePossible: code.pinWherePossible)
    }
}
