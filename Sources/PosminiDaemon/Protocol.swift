import Magstripe
import SwipeDecoder
import PosminiProtocol
import ReaderPipeline

/// The card fields a POS app may see: never the PAN, never the track text.
enum CardMessage {
    static func card(_ swipe: Swipe, reader: String, reference: String?) -> CardEvent {
        // The first payment track gives the card's fields; otherwise it is not a payment card.
        let payment = swipe.readTracks.lazy.compactMap { track -> MaskedTrack? in
            if case .payment = track.content { return track.masked }
            return nil
        }.first
        let figures = SwipeFigures(swipe)
        var card = CardEvent(reader: reader, reference: reference, cardType: payment == nil ? .nonPayment : .payment,
                             tracks: figures.tracks, quality: figures.summary)
        if let payment {
            if let pan = payment.pan {
                card.maskedPAN = pan
                card.last4 = String(pan.suffix(4))
            }
            card.expiry = payment.expiry
            card.serviceCode = payment.serviceCode
            if let name = payment.name, !name.isEmpty { card.name = name }
        }
        return card
    }

    /// A bad read: what a person can do about it, and no card data.
    static func failed(_ swipe: Swipe, reader: String, reference: String?) -> SwipeFailure {
        let figures = SwipeFigures(swipe)
        return SwipeFailure(reader: reader, reference: reference, reason: figures.reason, quality: figures.summary)
    }
}
