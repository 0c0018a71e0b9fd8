/// The limits that decide why a swipe failed (`SwipeProblem`), named once. The decoder's own
/// diagnosis uses them, the noise-burst line uses the first, and `posminid --diagnose` fails a
/// swipe check where the decoder would fail the read (docs/DIAGNOSE.md lists them beside its
/// warning margins).
public enum SwipeLimits {
    /// Fewer samples than this per half-cell and F2F's transitions cannot be picked one by one:
    /// `tooFast` (and the noise-burst line does not judge such a stretch).
    public static let minimumSamplesPerHalfCell = 2.2
    /// More than this fraction of the swipe's samples at full scale: `clipped` (the pulse
    /// peaks, where the transitions are timed, are cut off).
    public static let clippedFraction = 0.002
    /// A failed swipe whose median pulse height is below this (dBFS): `weakSignal` (the capture
    /// volume or boost is too low for the pulses to stand clear of the converter's own noise; a
    /// swipe this weak that reads is read). Before `noisy`: a weak swipe's pulses are near the converter's noise,
    /// and raising the volume, not moving the reader, is the cure.
    public static let weakPeakDBFS = -40.0
    /// Pulse height over the noise before the swipe below this (dB): `noisy`.
    public static let noisySNR = 14.0
    /// The slow cells (95th percentile of the cell time) more than this many times the fast ones
    /// (5th): `unevenSpeed` (the clock cannot follow a hand that stops and starts).
    public static let unevenSpeedRatio = 3.0
    /// A track cut short (no end sentinel) whose speed changed more than this many times over:
    /// `unevenSpeed` rather than `partialSwipe` (a card pulled back keeps its speed until then).
    public static let cutUnevenRatio = 2.5
    /// Transitions off the clock by more than this fraction of a cell (standard deviation):
    /// `unevenSpeed`.
    public static let unevenJitter = 0.18
    /// A mean speed below this (cm/s): `tooSlow` (the pulses sink into the noise and hum).
    public static let tooSlowSpeed = 4.0
    /// A failed swipe longer than this (seconds): `tooSlow`, a card crawling or held still on the
    /// head (an 86 mm card at 5 cm/s passes in 1.7 s).
    public static let crawlingSeconds = 2.5
    /// A stretch with no track format and fewer bits than this: `notAMagstripe`.
    public static let minimumBits = 40
    /// A failed read whose start sentinel is followed by fewer characters with good parity than
    /// this (the sentinel counted) has found no track format for the noise-burst line: random
    /// bits hold a sentinel by chance, a card's track holds dozens of good characters.
    public static let framedCharacters = 4
    /// The speeds a hand swipes a card at (cm/s): a 5-bit track read at a cell time that would
    /// put one density outside them is the other density (`DensityBasis.speed`).
    public static let plausibleSpeed: ClosedRange<Double> = 5...250
    /// The most cells a swipe can give: a card is 85.60 mm long (ISO/IEC 7810), 708 cells at
    /// 210 bpi (Tracks 1 and 3), and a tenth more for a clock that slips or a density a few per
    /// cent off (a hand that slows down adds none). The sequence detector stops past it; the
    /// noise-burst line calls a longer run of one bit a tone.
    public static let stripeCells = 780
}
