import Testing
import Magstripe
@testable import SwipeDecoder

/// The acceptance rules as a pure function: a decoded track, the clock's confidence in its
/// bits, the pass it came from and the rules in; the read's status out. No audio.
@Suite("Acceptance: a pure function of a read, the clock's confidence and the rules")
struct AcceptanceTests {
    static let payment = ";4111111111111111=28121010000012345678?"
    static let loyalty = ";1234567890123?"
    static let lead = 20

    /// The bits of `text` on Track 2 after `lead` clocking zeros, with one data bit of
    /// character `flip` inverted when given.
    static func attempt(_ text: String, confidence: Float = 1, flip: (character: Int, bit: Int)? = nil) throws -> Attempt {
        var bits = try TrackEncoding.bits(for: text, format: .track2, leadingZeros: lead, trailingZeros: 20)
        if let flip { bits[position(flip.character, flip.bit)] ^= 1 }
        return Attempt(setting: 0, bits: bits, confidence: [Float](repeating: confidence, count: bits.count),
                       repairs: 0, bridged: 0, periods: [], jitter: 0, firstPosition: 0, lastPosition: 0,
                       transitions: [], backward: false)
    }

    static func position(_ character: Int, _ bit: Int) -> Int { lead + character * 5 + bit }

    static func accept(_ a: Attempt, role: CandidateRole, rules: AcceptanceRules = .standard) throws -> TrackRead {
        let decoded = try TrackDecoding.decode(a.bits, format: .track2).get()
        return Acceptance.accept(decoded, attempt: a, role: role, rules: rules,
                                 maskPolicy: MaskPolicy(keepFirst: 6, keepLast: 4), channel: 0, sampleRate: 44_100)
    }

    @Test("a payment track with confident bits is taken from any pass")
    func confidentPayment() throws {
        let a = try Self.attempt(Self.payment)
        for role in [CandidateRole.plainPass, .primary, .fallback(9)] {
            let read = try Self.accept(a, role: role)
            #expect(read.status == .ok, "\(role)")
            #expect(read.format == .track2)
            #expect(read.weakBits == 0)
        }
    }

    @Test("doubtful bits: one is allowed, two are refused, a guessed bit (confidence 0) is refused")
    func doubtfulBits() throws {
        var a = try Self.attempt(Self.payment)
        a.confidence[Self.position(4, 2)] = 0.1
        #expect(try Self.accept(a, role: .primary).status == .ok)
        // The same read under rules that allow no doubtful bit.
        var strict = AcceptanceRules.standard
        strict.allowedWeakBits = 0
        #expect(try Self.accept(a, role: .primary, rules: strict).status == .failed(.doubtful))
        a.confidence[Self.position(9, 0)] = 0.2
        #expect(try Self.accept(a, role: .primary).status == .failed(.doubtful))
        var guess = try Self.attempt(Self.payment)
        guess.confidence[Self.position(7, 3)] = 0
        #expect(try Self.accept(guess, role: .primary).status == .failed(.doubtful))
        // Outside the frame (the clocking zeros) doubt does not count.
        var outside = try Self.attempt(Self.payment)
        outside.confidence[3] = 0
        outside.confidence[4] = 0
        #expect(try Self.accept(outside, role: .primary).status == .ok)
    }

    @Test("correction: only of a bit the clock was unsure of, by the primary, with no other doubt")
    func correction() throws {
        let flip = (character: 3, bit: 1)
        var unsure = try Self.attempt(Self.payment, flip: flip)
        unsure.confidence[Self.position(3, 1)] = 0.3
        let read = try Self.accept(unsure, role: .primary)
        #expect(read.status == .ok)
        #expect(read.corrections == 1)
        // A fallback's correction needs a second front end to agree.
        #expect(try Self.accept(unsure, role: .fallback(3)).status == .failed(.unconfirmed))
        #expect(try Self.accept(unsure, role: .plainPass).status == .failed(.unconfirmed))
        // A bit the clock was sure of was written so: correcting it would be guessing.
        var sure = try Self.attempt(Self.payment, flip: flip)
        sure.confidence[Self.position(3, 1)] = 0.9
        #expect(try Self.accept(sure, role: .primary).status == .failed(.doubtful))
        // A bridged guess is not a measured bit.
        var bridged = try Self.attempt(Self.payment, flip: flip)
        bridged.confidence[Self.position(3, 1)] = 0
        #expect(try Self.accept(bridged, role: .primary).status == .failed(.doubtful))
        // A doubtful bit beside the corrected one is a second error.
        unsure.confidence[Self.position(8, 2)] = 0.1
        #expect(try Self.accept(unsure, role: .primary).status == .failed(.doubtful))
    }

    @Test("a track without payment structure stands on the primary's word, or a spotless plain pass")
    func nonPayment() throws {
        let a = try Self.attempt(Self.loyalty)
        #expect(try Self.accept(a, role: .primary).status == .ok)
        #expect(try Self.accept(a, role: .plainPass).status == .ok)
        #expect(try Self.accept(a, role: .fallback(1)).status == .failed(.unconfirmed))
        var doubt = a
        doubt.confidence[Self.position(5, 0)] = 0.2
        #expect(try Self.accept(doubt, role: .plainPass).status == .failed(.unconfirmed))
        #expect(try Self.accept(doubt, role: .primary).status == .ok)
    }

    @Test("too few data characters are refused, at the rules' limit")
    func tooShort() throws {
        let a = try Self.attempt(";123456789?")          // 9 data characters
        #expect(try Self.accept(a, role: .primary).status == .failed(.tooShort(9)))
        var lenient = AcceptanceRules.standard
        lenient.minimumDataCharacters = 9
        #expect(try Self.accept(a, role: .primary, rules: lenient).status == .ok)
    }

    @Test("judge: no track gives the format-less failure; the candidate table's order is the documented one")
    func judgeAndTable() throws {
        let zeros = Attempt(setting: 0, bits: [UInt8](repeating: 0, count: 200), confidence: [Float](repeating: 1, count: 200),
                            repairs: 0, bridged: 0, periods: [], jitter: 0, firstPosition: 0, lastPosition: 0,
                            transitions: [], backward: false)
        let (read, _) = Acceptance.judge(zeros, setting: CandidateSetting.all[0], role: .primary, rules: .standard,
                                         maskPolicy: MaskPolicy(keepFirst: 6, keepLast: 4), channel: 0, sampleRate: 44_100)
        #expect(read.format == nil)
        #expect(read.status == .failed(.read(.noStartSentinel)))
        let (good, direction) = Acceptance.judge(try Self.attempt(Self.payment), setting: CandidateSetting.all[1],
                                                 role: .fallback(1), rules: .standard,
                                                 maskPolicy: MaskPolicy(keepFirst: 6, keepLast: 4), channel: 0, sampleRate: 44_100)
        #expect(good.status == .ok)
        #expect(good.format == .track2)
        #expect(direction == .reverse, "a backward clock's forward bits are a reverse swipe")

        let all = CandidateSetting.all
        #expect(all.count == CandidateSetting.frontEnds.count * CandidateSetting.clockings.count)
        #expect(all[0] == CandidateSetting(CandidateSetting.frontEnds[0], CandidateSetting.clockings[0]))
        #expect(all[0].front == .direct && all[0].threshold == 0.3 && !all[0].backward)
        #expect(all[1].backward)
        // Settings that share a front end are adjacent.
        for k in 1..<all.count where all[k].frontEnd != all[k - 1].frontEnd {
            #expect(!all[..<(k - 1)].contains { $0.frontEnd == all[k].frontEnd })
        }
        #expect(CandidateRole(index: 0) == .primary)
        #expect(CandidateRole(index: 5) == .fallback(5))
    }
}

@Suite("A failed swipe's reason: the advice the merchant needs")
struct FailureReasonTests {
    static func reason(meanSpeed: Double, periods: [Float] = [Float](repeating: 100, count: 200),
                       samplesPerHalfCell: Double = 20, snr: Double = 30, pulseDBFS: Double = -18, clipped: Double = 0,
                       seconds: Double = 1, jitter: Double = 0.02, bits: Int = 200, trackFound: Bool = true) -> SwipeProblem {
        let quality = SwipeQuality(peakDBFS: pulseDBFS + 6, snrDB: snr, jitter: jitter, minimumSamplesPerHalfCell: samplesPerHalfCell,
                                   clippedFraction: clipped, candidate: nil, candidatesTried: 56, pulseDBFS: pulseDBFS)
        let failure = trackFound ? TrackRead(format: .track2, status: .failed(.read(.noEndSentinel)), text: nil, content: nil,
                                             corrections: 0, masked: nil, channel: 0) : nil
        let swipe = Swipe(start: 0, end: seconds, direction: nil, tracks: failure.map { [$0] } ?? [],
                          speed: SpeedFigures(mean: meanSpeed, min: meanSpeed * 0.9, max: meanSpeed * 1.1),
                          quality: quality, problem: nil)
        let attempt = Attempt(setting: 0, bits: [UInt8](repeating: 0, count: bits), confidence: [Float](repeating: 1, count: bits),
                              repairs: 0, bridged: 0, periods: periods, jitter: jitter,
                              firstPosition: 0, lastPosition: 20_000, transitions: [], backward: false)
        return SwipeReport.diagnose(swipe, failure: failure, attempt: attempt)
    }

    @Test("too fast at its fastest point: a swipe whose speed changed 6-fold is unevenSpeed, a steady one tooFast; a noisy one is noisy first")
    func unevenBeforeTooFast() {
        let jerky: [Float] = (0..<200).map { $0 % 20 < 10 ? 4 : 24 }
        #expect(Self.reason(meanSpeed: 100, periods: jerky, samplesPerHalfCell: 1.5) == .unevenSpeed)
        #expect(Self.reason(meanSpeed: 100, periods: [Float](repeating: 3, count: 200), samplesPerHalfCell: 1.5) == .tooFast)
        #expect(Self.reason(meanSpeed: 100, periods: jerky, samplesPerHalfCell: 1.5, snr: 8) == .noisy)
    }

    @Test("a swipe that ended without its end sentinel at 2.5 cm/s crawled (tooSlow), and so did one that lasted 3 s; at 30 cm/s in 1 s it was pulled out (partialSwipe)")
    func slowBeforePartial() {
        #expect(Self.reason(meanSpeed: 2.5) == .tooSlow)
        #expect(Self.reason(meanSpeed: 30, seconds: 3) == .tooSlow)
        #expect(Self.reason(meanSpeed: 30) == .partialSwipe)
    }

    @Test("transitions scattered off the clock: with the speed changing 3-fold, unevenSpeed; at a steady speed, the noise (noisy)")
    func jitterFromNoise() {
        let threeFold: [Float] = (0..<200).map { $0 % 20 < 10 ? 60 : 180 }
        #expect(Self.reason(meanSpeed: 30, periods: threeFold, jitter: 0.25) == .unevenSpeed)
        #expect(Self.reason(meanSpeed: 30, jitter: 0.25) == .noisy)
    }

    @Test("weak is the pulses' level, not the noise: pulses at -46 dBFS are weakSignal whatever the SNR; at -18 dBFS with an SNR of 8 dB, noisy")
    func weakOrNoisy() {
        #expect(Self.reason(meanSpeed: 30, snr: 8, pulseDBFS: -46) == .weakSignal)
        #expect(Self.reason(meanSpeed: 30, snr: 30, pulseDBFS: -46) == .weakSignal)
        #expect(Self.reason(meanSpeed: 30, snr: 8, pulseDBFS: -18) == .noisy)
        #expect(Self.reason(meanSpeed: 30, pulseDBFS: -38) == .partialSwipe, "a quiet reader that is not too weak")
    }

    @Test("a swipe whose clock never locked (no track, 5 bits): with pulses at -46 dBFS, weakSignal (turn the volume up); at -18 dBFS, notAMagstripe")
    func faintBeforeNotAStripe() {
        #expect(Self.reason(meanSpeed: 30, pulseDBFS: -46, bits: 5, trackFound: false) == .weakSignal)
        #expect(Self.reason(meanSpeed: 30, pulseDBFS: -18, bits: 5, trackFound: false) == .notAMagstripe)
        #expect(Self.reason(meanSpeed: 30, snr: 8, pulseDBFS: -18, bits: 5, trackFound: false) == .notAMagstripe,
                "a loud noisy sound with no clock is still not a stripe")
    }

    @Test("a track cut short whose speed changed 3-fold is unevenSpeed, a steady one partialSwipe; a 4-fold change is told before clipping, a steady clipped swipe is clipped")
    func unevenCutAndClipped() {
        let threeFold: [Float] = (0..<200).map { $0 % 20 < 10 ? 60 : 180 }
        #expect(Self.reason(meanSpeed: 30, periods: threeFold) == .unevenSpeed)
        #expect(Self.reason(meanSpeed: 30, periods: (0..<200).map { $0 % 2 == 0 ? 90 : 110 }) == .partialSwipe)
        let fourFold: [Float] = (0..<200).map { $0 % 20 < 10 ? 40 : 160 }
        #expect(Self.reason(meanSpeed: 30, periods: fourFold, clipped: 0.01) == .unevenSpeed)
        #expect(Self.reason(meanSpeed: 30, clipped: 0.01) == .clipped)
    }
}

extension FailureReasonTests {
    @Test("bits without a start sentinel: clocking zeros at one end and data after them are a partial swipe; a tone's zeros, or zeros and a few stray ones, are not a magstripe")
    func cutOrNotACard() {
        var data = [UInt8](repeating: 0, count: 30)
        for k in 0..<80 { data.append(UInt8((k * 7 + k / 3) % 3 == 0 ? 1 : 0)) }
        #expect(SwipeReport.looksCut(data), "zeros, then data")
        #expect(SwipeReport.looksCut(Array(data.reversed())), "data, then the zeros (the other end)")
        #expect(!SwipeReport.looksCut([UInt8](repeating: 0, count: 200)), "a tone")
        var stray = [UInt8](repeating: 0, count: 200)
        stray[150] = 1
        #expect(!SwipeReport.looksCut(stray), "zeros with one stray one")
        #expect(!SwipeReport.looksCut(Array(data.dropFirst(25))), "no clocking run")
    }
}
