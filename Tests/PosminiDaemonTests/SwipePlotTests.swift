import Testing
import Magstripe
import SwipeSynth
import TestSupport
@testable import SwipeDecoder
@testable import PosminiDaemon
@testable import PosminiDiagnose
import PosminiConfig

/// The diagnose plot against the synthesized card: where each character really lies in time
/// comes from the synthesizer's pulses, not from the decoder or the plot.
@Suite("Diagnose plot: nothing of a masked character is drawn")
struct SwipePlotTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var format: TrackFormat
        var direction: SwipeDirection
        /// Where the stray one bit is: cells before the start sentinel (< 0) or after the LRC (> 0).
        var offset: Int
        var testDescription: String { "\(format) \(direction) stray at \(offset)" }
    }

    /// Three places in the leading clocking zeros (from just outside the start sentinel's
    /// character of zeros to near the card's edge), two in the trailing ones.
    static let strays: [Case] = [TrackFormat.track1, .track2, .track3].flatMap { format in
        let w = format.characterWidth
        // Leading zeros: 57 cells on Tracks 1 and 3, 20 on Track 2.
        let leading = format == .track2 ? [-(w + 1), -12, -18] : [-(w + 1), -30, -50]
        let trailing = [2 * w + 1, format == .track2 ? 25 : 60]
        return SwipeDirection.allCases.flatMap { direction in
            (leading + trailing).map { Case(format: format, direction: direction, offset: $0) }
        }
    }

    static func clearText(_ format: TrackFormat) -> String {
        switch format {
        case .track1: track1Text
        case .track2: track2Text
        case .track3: track3Text
        }
    }

    @Test("a stray one bit in the clocking zeros (a scratch): every masked character shows only the envelope; the unmasked ones show their bits",
          arguments: strays)
    func strayBit(_ c: Case) throws {
        var track = try StripeTrack(text: Self.clearText(c.format), format: c.format)
        let frame = Self.frameCells(track)
        let at = c.offset < 0 ? frame.lowerBound + c.offset : frame.upperBound - 1 + c.offset
        try #require(at >= 0 && at < track.bits.count && track.bits[at] == 0)
        track.bits[at] = 1
        try checkPlot(track, direction: c.direction)
    }

    @Test("a read by a backward-clocking candidate, with a stray one bit: the plot is placed in time as well",
          arguments: SwipeDirection.allCases)
    func backwardClock(direction: SwipeDirection) throws {
        var track = try StripeTrack(text: track1Text, format: .track1)
        let frame = Self.frameCells(track)
        track.bits[frame.lowerBound - 9] = 1
        // Six cells without a pulse where the swipe begins (before the start sentinel in a
        // forward swipe, after the LRC in a reverse one): a clock starting there stops at the
        // gap, so only a candidate clocking from the swipe's end reads the track.
        let gap = direction == .forward ? (frame.lowerBound - 16)..<(frame.lowerBound - 10)
                                        : (frame.upperBound + 15)..<(frame.upperBound + 21)
        // Weak spots count transitions (card order): one per cell, one more per one bit.
        for k in gap { track.weakTransitions[k + track.bits[..<k].reduce(0) { $0 + Int($1) }] = 0 }
        let swipe = try checkPlot(track, direction: direction)
        let candidate = try #require(swipe.quality.candidate)
        #expect(CandidateSetting.all[candidate].backward, "candidate \(candidate) clocks forward")
    }

    // MARK: The check

    /// Renders and decodes a swipe of `track`, draws the plot and checks it character by
    /// character against the synthesized pulses.
    @discardableResult
    func checkPlot(_ track: StripeTrack, direction: SwipeDirection) throws -> Swipe {
        let audio = SwipePlotMarginTests.audioPath()
        let truth = SwipeSynthesizer.render(SwipeScenario(tracks: [track], motion: Motion(speed: .constant(300), direction: direction),
                                                          audio: audio, seed: 11))
        var configuration = DecoderConfiguration()
        configuration.keepTimeline = true
        let decoder = try! SwipeDecoder(sampleRate: 44_100, configuration: configuration)
        let samples = truth.channels[0]
        let swipes = decoder.push(samples) + decoder.finish()
        let swipe = try #require(swipes.first { $0.tracks.first?.isOK == true }, "the track does not read")
        let read = try #require(swipe.tracks.first)
        // Compared as a truth value: a failure must not print the card.
        let sameText = read.text?.revealed() == track.text
        #expect(sameText, "the track reads as other text")
        #expect(swipe.direction == direction)
        let masked = try #require(read.masked?.text)

        let picture = SwipePlot.svg(SwipeResult(swipe: swipe, channel: 0, audio: samples, rate: 44_100), device: "test")
        let pan = Self.clearText(track.format).dropFirst(track.format == .track1 ? 2 : 1).prefix(16)
        let leaks = picture.contains(pan)
        #expect(!leaks, "the PAN is in the SVG")

        // The plot's time axis (as SwipePlot lays it out): 50 ms either side of the swipe, 60 px
        // of margin on the left, 1520 px of plot.
        let t0 = max(0, swipe.start - 0.05), t1 = min(Double(samples.count) / 44_100, swipe.end + 0.05)
        let span = max(1e-3, t1 - t0)
        func x(_ t: Double) -> Double { 60 + (t - t0) / span * 1520 }

        // Where each character and the LRC really are, in plot x, card order.
        let w = track.format.characterWidth
        let frame = Self.frameCells(track)
        let times = Self.cellTimes(truth.tracks[0])
        let n = track.bits.count
        let characters = Array(masked)
        let ranges: [ClosedRange<Double>] = (0...characters.count).map { c in
            let card = (frame.lowerBound + c * w)..<(frame.lowerBound + (c + 1) * w)
            let head = direction == .forward ? card : (n - card.upperBound)..<(n - card.lowerBound)
            return x(times[head.lowerBound])...x(times[head.upperBound])
        }
        // What the CARD masks: from the start sentinel through the PAN's masked part, every
        // masked character, and the LRC (the last range).
        let separator = characters.firstIndex { $0 == "^" || $0 == "=" } ?? characters.count
        let lastMasked = characters[..<separator].lastIndex(of: "*") ?? 0
        let hidden = (0...characters.count).map { $0 <= lastMasked || $0 == characters.count || characters[$0] == "*" }
        #expect(hidden.contains(false) && hidden.contains(true))

        let transitions = Self.values("x1", of: "transition", in: picture)
        let labels = Self.values("x", of: "bit", in: picture)
        let cells = Self.cells(in: picture)
        let columns = Self.waveformColumns(in: picture)
        #expect(transitions.count > 40 && !cells.isEmpty && !columns.isEmpty)
        let tolerance = 0.5
        for (c, range) in ranges.enumerated() {
            let inside = (range.lowerBound + tolerance)...max(range.lowerBound + tolerance, range.upperBound - tolerance)
            let cellsInside = cells.filter { inside.contains(($0.x + $0.x + $0.width) / 2) }
            if hidden[c] {
                #expect(!transitions.contains { inside.contains($0) }, "a transition drawn in masked character \(c)")
                #expect(!labels.contains { inside.contains($0) }, "a bit label drawn in masked character \(c)")
                #expect(!cells.contains { $0.x < inside.upperBound && $0.x + $0.width > inside.lowerBound },
                        "a bit cell drawn in masked character \(c)")
                #expect(!columns.contains { $0 < inside.upperBound && $0 + 1 > inside.lowerBound },
                        "waveform detail drawn in masked character \(c)")
            } else {
                // Its bits, and only its own, are drawn: the character can be read off the plot.
                let card = (frame.lowerBound + c * w)..<(frame.lowerBound + (c + 1) * w)
                let drawn = cellsInside.sorted { $0.x < $1.x }.map(\.bit)
                let shown = direction == .forward ? drawn : drawn.reversed()
                let same = shown == Array(track.bits[card])
                #expect(same, "character \(c) is not drawn as its bits")
            }
        }
        // The characters along the axis: the CARD's masked text, each over its own cells.
        let drawnCharacters = Self.characterLabels(in: picture)
        #expect(String(drawnCharacters.map(\.character)) == masked)
        for (c, label) in drawnCharacters.enumerated() where c < ranges.count {
            #expect(ranges[c].contains(label.x), "character \(c) drawn away from its cells")
        }
        return swipe
    }

    // MARK: Ground truth

    /// Card-order cells of the track's frame, start sentinel through LRC.
    static func frameCells(_ track: StripeTrack) -> Range<Int> {
        // Laid out afresh from the text: a stray one bit must not be taken for the start sentinel.
        let text = track.text ?? ""
        let values = (try? TrackEncoding.values(of: text, format: track.format)) ?? []
        let layout = (try? StripeTrack(text: text, format: track.format))?.bits ?? track.bits
        // The start sentinel's first bit is a one in every format (its value is odd), and the
        // unaltered track has nothing but zeros before it.
        let start = layout.firstIndex(of: 1) ?? 0
        return start..<(start + (values.count + 1) * track.format.characterWidth)
    }

    /// Stream seconds of the rendered track's cell boundaries in time order (F2F: every cell
    /// starts with a pulse, a one has another in mid-cell).
    static func cellTimes(_ rendered: RenderedTrack) -> [Double] {
        var times: [Double] = []
        var p = 0
        for bit in rendered.bits {
            times.append(rendered.pulses[p].time)
            p += bit == 1 ? 2 : 1
        }
        times.append(rendered.pulses[p].time)
        return times
    }

    // MARK: Reading the SVG

    static func lines(of cls: String, in svg: String) -> [Substring] {
        svg.split(separator: "\n").filter { $0.contains("class=\"\(cls)\"") }
    }

    static func attribute(_ name: String, in line: Substring) -> Substring? {
        guard let r = line.firstRange(of: " \(name)=\"") else { return nil }
        return line[r.upperBound...].prefix { $0 != "\"" }
    }

    static func values(_ name: String, of cls: String, in svg: String) -> [Double] {
        lines(of: cls, in: svg).compactMap { attribute(name, in: $0).flatMap { Double($0) } }
    }

    /// The drawn bit cells: where, how wide, which bit.
    static func cells(in svg: String) -> [(x: Double, width: Double, bit: UInt8)] {
        lines(of: "cell", in: svg).compactMap { line in
            guard let x = attribute("x", in: line).flatMap({ Double($0) }),
                  let width = attribute("width", in: line).flatMap({ Double($0) }),
                  let bit = attribute("data-bit", in: line).flatMap({ UInt8($0) }) else { return nil }
            return (x, width, bit)
        }
    }

    /// The left edge of every pixel column the waveform path draws (one `M x y V y` each).
    static func waveformColumns(in svg: String) -> [Double] {
        guard let line = svg.split(separator: "\n").first(where: { $0.hasPrefix("<path d=\"") }) else { return [] }
        let d = line.dropFirst("<path d=\"".count).prefix { $0 != "\"" }
        return d.split(separator: "M").compactMap { Double($0.prefix { $0 != " " }) }
    }

    static func characterLabels(in svg: String) -> [(x: Double, character: Character)] {
        lines(of: "character", in: svg).compactMap { line in
            guard let x = attribute("x", in: line).flatMap({ Double($0) }),
                  let open = line.firstIndex(of: ">"), let close = line.firstRange(of: "</text>") else { return nil }
            let text = String(line[line.index(after: open)..<close.lowerBound])
                .replacing("&lt;", with: "<").replacing("&gt;", with: ">")
                .replacing("&quot;", with: "\"").replacing("&amp;", with: "&")
            guard let character = text.first, text.count == 1 else { return nil }
            return (x, character)
        }
    }
}

/// Swipes whose audio holds more of the card than the read frame: a second pass in the margin
/// after the swipe, a second copy in the same stretch, a read that fails. Nothing of a character
/// the CARD masks, and nothing at all of a copy that was not the one read, may be drawn.
@Suite("Diagnose plot: nothing outside what the CARD shows is drawn")
struct SwipePlotMarginTests {
    /// One copy of the track in the audio: where each of its characters and its LRC lie, in
    /// stream seconds, card order.
    struct Copy {
        var characters: [ClosedRange<Double>]
    }

    /// The copy of `track` whose frame starts at card cell `start` (reversed: its bits run
    /// backwards in card order, LRC first), on a rendering whose cell boundaries are `times`
    /// (time order) with `offset` seconds added, swiped in `direction`.
    static func copy(of format: TrackFormat, characters: Int, start: Int, reversed: Bool, cellCount n: Int,
                     times: [Double], offset: Double, direction: SwipeDirection) -> Copy {
        let w = format.characterWidth
        let ranges: [ClosedRange<Double>] = (0...characters).map { c in
            // Card-order cells of character c (the LRC last).
            let card = reversed ? (start + (characters - c) * w)..<(start + (characters - c + 1) * w)
                                : (start + c * w)..<(start + (c + 1) * w)
            let head = direction == .forward ? card : (n - card.upperBound)..<(n - card.lowerBound)
            return (times[head.lowerBound] + offset)...(times[head.upperBound] + offset)
        }
        return Copy(characters: ranges)
    }

    static func audioPath() -> AudioPath {
        var audio = AudioPath(sampleRate: 44_100)
        audio.snr = 35
        audio.level = -14
        audio.leadingSilence = 0.1
        audio.trailingSilence = 0.3
        return audio
    }

    static func decode(_ samples: [Float]) -> [Swipe] {
        var configuration = DecoderConfiguration()
        configuration.keepTimeline = true
        let decoder = try! SwipeDecoder(sampleRate: 44_100, configuration: configuration)
        return decoder.push(samples) + decoder.finish()
    }

    /// Checks the plot of `swipe` over `samples`: every character of every copy is drawn as the
    /// envelope alone, except the characters the CARD leaves visible in the copy that was read.
    /// Returns how many characters were shown with their bits.
    @discardableResult
    static func check(_ swipe: Swipe, samples: [Float], copies: [Copy], text: String, format: TrackFormat) throws -> Int {
        let picture = SwipePlot.svg(SwipeResult(swipe: swipe, channel: 0, audio: samples, rate: 44_100), device: "test")
        let pan = text.dropFirst(format == .track1 ? 2 : 1).prefix(16)
        let leaks = picture.contains(pan)
        #expect(!leaks, "the PAN is in the SVG")
        let t0 = max(0, swipe.start - 0.05), t1 = min(Double(samples.count) / 44_100, swipe.end + 0.05)
        let span = max(1e-3, t1 - t0)
        func x(_ t: Double) -> Double { 60 + (t - t0) / span * 1520 }

        // Which characters may be shown: those the CARD leaves clear, in the copy the decoder read
        // (the copy whose start sentinel lies where the frame's first character does).
        var visible: (copy: Int, characters: Set<Int>)?
        if let masked = swipe.readTracks.first?.masked?.text, let timeline = swipe.timeline,
           let frame = swipe.readTracks.first?.frame, let first = frame.characterCells.first {
            let characters = Array(masked)
            let middle = (timeline.cellBoundaries[first.lowerBound] + timeline.cellBoundaries[first.upperBound]) / 2
            if let read = copies.firstIndex(where: { $0.characters[0].contains(middle) }) {
                let separator = characters.firstIndex { $0 == "^" || $0 == "=" } ?? characters.count
                let lastMasked = characters[..<separator].lastIndex(of: "*") ?? 0
                visible = (read, Set(characters.indices.filter { $0 > lastMasked && characters[$0] != "*" }))
            }
            #expect(visible != nil, "the read frame lies on no copy of the track")
        }

        let transitions = SwipePlotTests.values("x1", of: "transition", in: picture)
        let labels = SwipePlotTests.values("x", of: "bit", in: picture)
        let cells = SwipePlotTests.cells(in: picture)
        let columns = SwipePlotTests.waveformColumns(in: picture)
        let tolerance = 0.5
        var shown = 0
        for (k, copy) in copies.enumerated() {
            for (c, range) in copy.characters.enumerated() {
                if let visible, visible.copy == k, visible.characters.contains(c) { shown += 1; continue }
                let a = x(range.lowerBound) + tolerance, b = max(a, x(range.upperBound) - tolerance)
                #expect(!transitions.contains { $0 >= a && $0 <= b }, "a transition drawn in character \(c) of copy \(k)")
                #expect(!labels.contains { $0 >= a && $0 <= b }, "a bit label drawn in character \(c) of copy \(k)")
                #expect(!cells.contains { $0.x < b && $0.x + $0.width > a }, "a bit cell drawn in character \(c) of copy \(k)")
                #expect(!columns.contains { $0 < b && $0 + 1 > a }, "waveform detail drawn in character \(c) of copy \(k)")
            }
        }
        return shown
    }

    @Test("a card swiped forward and, after a 10 ms stop, back again: the second pass (in the margin after the swipe) is envelope only",
          arguments: [TrackFormat.track1, .track2])
    func backAndForth(format: TrackFormat) throws {
        let text = format == .track1 ? track1Text : track2Text
        let track = try StripeTrack(text: text, format: format)
        var first = Self.audioPath(), second = Self.audioPath()
        first.trailingSilence = 0
        second.leadingSilence = 0.01
        let forward = SwipeSynthesizer.render(SwipeScenario(tracks: [track], motion: Motion(speed: .constant(300), direction: .forward), audio: first, seed: 21))
        let back = SwipeSynthesizer.render(SwipeScenario(tracks: [track], motion: Motion(speed: .constant(300), direction: .reverse), audio: second, seed: 22))
        let samples = forward.channels[0] + back.channels[0]
        let offset = Double(forward.frameCount) / 44_100
        let frame = SwipePlotTests.frameCells(track)
        let characters = try TrackEncoding.values(of: text, format: format).count
        let n = track.bits.count
        let copies = [
            Self.copy(of: format, characters: characters, start: frame.lowerBound, reversed: false, cellCount: n,
                      times: SwipePlotTests.cellTimes(forward.tracks[0]), offset: 0, direction: .forward),
            Self.copy(of: format, characters: characters, start: frame.lowerBound, reversed: false, cellCount: n,
                      times: SwipePlotTests.cellTimes(back.tracks[0]), offset: offset, direction: .reverse),
        ]
        let swipes = Self.decode(samples)
        let swipe = try #require(swipes.first { $0.tracks.first?.isOK == true }, "neither pass reads")
        // The plot's margin reaches into the other pass.
        #expect(swipe.end + 0.05 > copies[1].characters.map(\.lowerBound).min()! || swipe.start - 0.05 < copies[0].characters.map(\.upperBound).max()!)
        let shown = try Self.check(swipe, samples: samples, copies: copies, text: text, format: format)
        #expect(shown > 0, "no character shown")
    }

    @Test("two copies of the track in one stretch, 10 clocking zeros apart, forward-forward and forward-back: the second copy is envelope only",
          arguments: [(TrackFormat.track1, false), (.track1, true), (.track2, false), (.track2, true)])
    func twoCopies(format: TrackFormat, reversedSecond: Bool) throws {
        let text = format == .track1 ? track1Text : track2Text
        let single = try StripeTrack(text: text, format: format)
        let frame = SwipePlotTests.frameCells(single)
        let frameBits = Array(single.bits[frame])
        let second = reversedSecond ? frameBits.reversed() : frameBits
        let bits = Array(single.bits[..<frame.upperBound]) + [UInt8](repeating: 0, count: 10) + second + Array(single.bits[frame.upperBound...])
        let track = StripeTrack(bits: bits, format: format)
        let characters = try TrackEncoding.values(of: text, format: format).count
        for direction in SwipeDirection.allCases {
            let truth = SwipeSynthesizer.render(SwipeScenario(tracks: [track], motion: Motion(speed: .constant(300), direction: direction),
                                                              audio: Self.audioPath(), seed: 31))
            let times = SwipePlotTests.cellTimes(truth.tracks[0])
            let copies = [
                Self.copy(of: format, characters: characters, start: frame.lowerBound, reversed: false, cellCount: bits.count,
                          times: times, offset: 0, direction: direction),
                Self.copy(of: format, characters: characters, start: frame.upperBound + 10, reversed: reversedSecond, cellCount: bits.count,
                          times: times, offset: 0, direction: direction),
            ]
            let swipes = Self.decode(truth.channels[0])
            let swipe = try #require(swipes.first { $0.tracks.first?.isOK == true }, "no copy reads (\(direction))")
            let shown = try Self.check(swipe, samples: truth.channels[0], copies: copies, text: text, format: format)
            #expect(shown > 0, "no character shown (\(direction))")
        }
    }

    @Test("a read that fails (two bits flipped in the PAN): every character is envelope only",
          arguments: [TrackFormat.track1, .track2])
    func failedRead(format: TrackFormat) throws {
        let text = format == .track1 ? track1Text : track2Text
        var track = try StripeTrack(text: text, format: format)
        let frame = SwipePlotTests.frameCells(track)
        let w = format.characterWidth
        // Two characters of the PAN with a bit flipped each: parity fails twice, beyond correction.
        track.bits[frame.lowerBound + 3 * w + 1] ^= 1
        track.bits[frame.lowerBound + 7 * w + 2] ^= 1
        let characters = try TrackEncoding.values(of: text, format: format).count
        for direction in SwipeDirection.allCases {
            let truth = SwipeSynthesizer.render(SwipeScenario(tracks: [track], motion: Motion(speed: .constant(300), direction: direction),
                                                              audio: Self.audioPath(), seed: 41))
            let swipes = Self.decode(truth.channels[0])
            let swipe = try #require(swipes.first, "no swipe at all (\(direction))")
            #expect(swipe.readTracks.isEmpty, "a damaged track read (\(direction))")
            let copies = [Self.copy(of: format, characters: characters, start: frame.lowerBound, reversed: false, cellCount: track.bits.count,
                                    times: SwipePlotTests.cellTimes(truth.tracks[0]), offset: 0, direction: direction)]
            let shown = try Self.check(swipe, samples: truth.channels[0], copies: copies, text: text, format: format)
            #expect(shown == 0)
        }
    }
}
