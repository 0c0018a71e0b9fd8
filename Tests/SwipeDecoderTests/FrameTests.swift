import Testing
import Magstripe
import SwipeSynth
@testable import SwipeDecoder

/// A track laid out as `StripeTrack(text:format:)` lays it out, with one stray one bit among the
/// clocking zeros (a scratch): `offset` < 0 puts it that many cells before the start sentinel,
/// `offset` > 0 that many cells after the LRC's last cell.
func strayTrack(_ text: String, format: TrackFormat, offset: Int?) throws -> StripeTrack {
    var track = try StripeTrack(text: text, format: format)
    guard let offset else { return track }
    let frame = frameCells(track)
    let at = offset < 0 ? frame.lowerBound + offset : frame.upperBound - 1 + offset
    precondition(at >= 0 && at < track.bits.count && track.bits[at] == 0, "stray bit outside the clocking zeros")
    track.bits[at] = 1
    return track
}

/// Card-order cells of a stripe track's frame, start sentinel through LRC.
func frameCells(_ track: StripeTrack) -> Range<Int> {
    // Laid out afresh from the text: a stray one bit must not be taken for the start sentinel.
    let text = track.text ?? ""
    let values = (try? TrackEncoding.values(of: text, format: track.format)) ?? []
    let layout = (try? StripeTrack(text: text, format: track.format))?.bits ?? track.bits
    // The start sentinel's first bit is a one in every format (its value is odd).
    let start = layout.firstIndex(of: 1) ?? 0
    return start..<(start + (values.count + 1) * track.format.characterWidth)
}

/// Stream seconds of a rendered track's cell boundaries in time order (F2F: every cell starts
/// with a pulse, a one has one more in mid-cell).
func cellTimes(_ rendered: RenderedTrack) -> [Double] {
    var times: [Double] = []
    var p = 0
    for bit in rendered.bits {
        times.append(rendered.pulses[p].time)
        p += bit == 1 ? 2 : 1
    }
    times.append(rendered.pulses[p].time)
    return times
}

/// A swipe of `track` at 30 cm/s (or `speed` mm/s) with the decoder keeping the timeline.
func decodeWithTimeline(_ track: StripeTrack, direction: SwipeDirection, speed: Double = 300, seed: UInt64 = 11) -> (SynthesizedSwipe, [Swipe]) {
    var audio = AudioPath(sampleRate: 44_100)
    audio.snr = 35
    audio.level = -14
    audio.leadingSilence = 0.1
    audio.trailingSilence = 0.3
    let rendered = SwipeSynthesizer.render(SwipeScenario(tracks: [track], motion: Motion(speed: .constant(speed), direction: direction),
                                                         audio: audio, seed: seed))
    var configuration = DecoderConfiguration()
    configuration.keepTimeline = true
    let decoder = try! SwipeDecoder(sampleRate: 44_100, configuration: configuration)
    return (rendered, decoder.push(rendered.channels[0]) + decoder.finish())
}

/// Six cells of the track's clocking zeros without a pulse: a dropout longer than the clock
/// bridges. Before the start sentinel (card order) when `leading`, after the LRC
/// otherwise; placed so that the clock running from the swipe's first pulse stops at the gap
/// before the track, and only a clock started from the other end reads it.
func dropout(_ track: inout StripeTrack, leading: Bool) {
    let frame = frameCells(track)
    // Six cells of zeros, with at least a start run for the clock on the far side and two
    // characters' zeros on the near.
    let cells = leading ? (frame.lowerBound - 16)..<(frame.lowerBound - 10)
                        : (frame.upperBound + 15)..<(frame.upperBound + 21)
    precondition(cells.allSatisfy { $0 >= 10 && $0 < track.bits.count - 10 && track.bits[$0] == 0 })
    for k in cells { track.weakTransitions[boundaryTransition(track, cell: k)] = 0 }
}

/// The index (card order) of the transition that starts `cell`: one per cell before it, one
/// more for each one bit.
func boundaryTransition(_ track: StripeTrack, cell: Int) -> Int {
    cell + track.bits[..<cell].reduce(0) { $0 + Int($1) }
}

@Suite("Swipe decoder: the read track's frame, as cells of the timeline")
struct TrackFrameTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var format: TrackFormat
        var direction: SwipeDirection
        var offset: Int?
        var testDescription: String { "\(format) \(direction) stray \(offset.map(String.init) ?? "none")" }
    }

    static let cases: [Case] = [TrackFormat.track1, .track2, .track3].flatMap { format in
        SwipeDirection.allCases.flatMap { direction in
            [nil, -(format.characterWidth + 1), -15, 11 + format.characterWidth].map { Case(format: format, direction: direction, offset: $0) }
        }
    }

    /// The frame's cells hold the track's bits in card order, and its start sentinel starts
    /// where the card's does.
    func checkFrame(_ track: StripeTrack, _ truth: SynthesizedSwipe, _ swipe: Swipe) throws {
        let read = try #require(swipe.tracks.first)
        let frame = try #require(read.frame)
        let timeline = try #require(swipe.timeline)
        let format = track.format
        let w = format.characterWidth
        let card = frameCells(track)
        #expect(frame.characterCells.count * w + w == card.count)
        #expect(frame.lrcCells.count == w)
        #expect(frame.isReversed == (swipe.direction == .reverse))
        // Card-order bits of each character and of the LRC, read from the timeline at the frame.
        let reverse = swipe.direction == .reverse
        var bits: [UInt8] = []
        for cells in frame.characterCells + [frame.lrcCells] {
            let part = cells.map { timeline.bits[$0] }
            bits += reverse ? part.reversed() : part
        }
        let same = bits == Array(track.bits[card])
        #expect(same, "the frame's cells do not hold the track's characters")
        // The start sentinel's first cell, in time: against the synthesized pulses.
        let times = cellTimes(truth.tracks[0])
        let n = track.bits.count
        let headCell = reverse ? n - 1 - card.lowerBound : card.lowerBound
        let k = try #require(frame.startSentinelCell)
        let cell = times[headCell + 1] - times[headCell]
        #expect(abs(timeline.cellBoundaries[k] - times[headCell]) < 0.2 * cell)
        #expect(abs(timeline.cellBoundaries[k + 1] - times[headCell + 1]) < 0.2 * cell)
    }

    @Test("a stray one bit in the clocking zeros does not move the frame", arguments: cases)
    func strayBit(_ c: Case) throws {
        let clear = text(c.format)
        let track = try strayTrack(clear, format: c.format, offset: c.offset)
        let (truth, swipes) = decodeWithTimeline(track, direction: c.direction)
        #expect(swipes.count == 1)
        let swipe = try #require(swipes.first)
        let ok = swipe.tracks.first?.isOK == true && swipe.tracks.first?.text?.revealed() == clear
        #expect(ok, "the track does not read")
        #expect(swipe.direction == c.direction)
        try checkFrame(track, truth, swipe)
    }

    @Test("a read by a backward-clocking candidate: timeline and frame in time order", arguments: SwipeDirection.allCases)
    func backwardClock(direction: SwipeDirection) throws {
        // The gap lies where the swipe begins: before the start sentinel in a forward swipe,
        // after the LRC in a reverse one.
        // Track 1: its leading zeros leave room for a start run before the gap.
        var track = try strayTrack(track1Text, format: .track1, offset: -9)
        dropout(&track, leading: direction == .forward)
        let (truth, swipes) = decodeWithTimeline(track, direction: direction)
        let swipe = try #require(swipes.first { $0.tracks.first?.isOK == true })
        let candidate = try #require(swipe.quality.candidate)
        #expect(CandidateSetting.all[candidate].backward, "candidate \(candidate) clocks forward")
        #expect(swipe.direction == direction)
        let timeline = try #require(swipe.timeline)
        #expect(timeline.cellBoundaries == timeline.cellBoundaries.sorted())
        try checkFrame(track, truth, swipe)
    }

    @Test("frame cells from a bit string read with or against time")
    func frameArithmetic() {
        let forward = TrackFrame(start: 10, characters: 3, width: 5, cellCount: 100, againstTime: false)
        #expect(forward.characterCells == [10..<15, 15..<20, 20..<25])
        #expect(forward.lrcCells == 25..<30)
        #expect(forward.startSentinelCell == 10)
        #expect(forward.cells == 10..<30)
        let backward = TrackFrame(start: 10, characters: 3, width: 5, cellCount: 100, againstTime: true)
        #expect(backward.characterCells == [85..<90, 80..<85, 75..<80])
        #expect(backward.lrcCells == 70..<75)
        #expect(backward.startSentinelCell == 89)
        #expect(backward.cells == 70..<90)
    }
}

/// The cases a merchant felt: one stray bit right beside a sentinel spoiled a good card.
@Suite("Swipe decoder: a scratch beside a sentinel")
struct ScratchBesideSentinelTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var format: TrackFormat
        var strays: [Int]
        var testDescription: String { "\(format) strays \(strays)" }
    }

    /// Right before the start sentinel (1 to a character's width plus one), right after the LRC
    /// (1 to two widths), and two at once.
    static let cases: [Case] = [TrackFormat.track1, .track2, .track3].flatMap { format in
        let w = format.characterWidth
        let before = [-1, -2, -4, -w, -(w + 1)].map { [$0] }
        let after = [1, 2, 5, w + 1, 2 * w].map { [$0] }
        return (before + after + [[-1, 3], [-2, -4], [1, 4]]).map { Case(format: format, strays: $0) }
    }

    @Test("a stray one bit (or two) right beside the frame, 50 cm/s, both directions: the track reads, at its own place", arguments: cases)
    func reads(_ c: Case) throws {
        let text = text(c.format)
        var track = try StripeTrack(text: text, format: c.format)
        let frame = frameCells(track)
        for s in c.strays {
            let at = s < 0 ? frame.lowerBound + s : frame.upperBound - 1 + s
            try #require(track.bits[at] == 0)
            track.bits[at] = 1
        }
        for direction in SwipeDirection.allCases {
            let (_, swipes) = decodeWithTimeline(track, direction: direction, speed: 500, seed: 17)
            #expect(swipes.count == 1, "\(direction): \(swipes.count) swipes")
            let read = swipes.first?.tracks.first
            let ok = read?.isOK == true && read?.text?.revealed() == text
            #expect(ok, "\(direction): \(read.map { "\($0.status)" } ?? "no track")")
            #expect(swipes.first?.direction == direction)
        }
    }
}
