/// The sample rates posminid takes, from every input: WAV files, raw replays, ALSA devices and
/// the decoder itself. Below 8 kHz a swipe's bit cells are too few samples for the decoder's
/// filters (and its block sizes fall to nothing); above 192 kHz no reader's signal gains
/// anything and buffers sized in seconds grow without use. One range, checked at each edge,
/// so that no rate reaches arithmetic that was not written for it.
public enum SampleRate {
    public static let supported: ClosedRange<Int> = 8_000...192_000

    /// Throws when `rate` is outside `supported`.
    public static func check(_ rate: Int) throws(UnsupportedSampleRate) {
        guard supported.contains(rate) else { throw UnsupportedSampleRate(rate: rate) }
    }
}

/// A sample rate outside `SampleRate.supported`; its description names the rate and the range.
public struct UnsupportedSampleRate: Error, Sendable, Hashable, CustomStringConvertible {
    public var rate: Int

    public init(rate: Int) { self.rate = rate }

    public var description: String {
        "unsupported sample rate \(rate) Hz: \(SampleRate.supported.lowerBound)-\(SampleRate.supported.upperBound) Hz are read"
    }
}
