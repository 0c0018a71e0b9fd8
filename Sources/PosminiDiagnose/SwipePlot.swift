import SwipeDecoder
import Magstripe

/// The swipe as a picture for the provider: the waveform with the flux transitions marked, the
/// bit cells and the (masked) characters along the time axis, and the speed over the swipe.
///
/// The waveform and the bits encode the card, so the plot shows them only where the CARD shows
/// the card: the characters the CARD leaves visible, and the runs of clocking zeros right
/// before the start sentinel and right after the LRC up to their first one bit (the swipe's
/// rhythm and speed). Everything else (the masked characters, the LRC, whatever lies beyond
/// the first one bit outside the frame, a second copy of the track in the same stretch, the
/// margins either side of the swipe, and all of a swipe that did not read) is drawn as the
/// signal's envelope alone: no pulse, transition, bit or label.
enum SwipePlot {
    /// Cells (time order) whose pulses and bits may be drawn.
    ///
    /// The characters are placed by the decoder's frame (the cells it read each character
    /// from), never by the bits themselves: a stray one bit among the clocking zeros would move
    /// a stretch found that way off the PAN.
    static func visibleCells(_ swipe: Swipe, timeline: SwipeTimeline) -> [Bool] {
        let bits = timeline.bits
        let n = bits.count
        var visible = [Bool](repeating: false, count: n)
        guard n > 0 else { return visible }
        // Every character has odd parity, so at most `width - 1` of its bits come before its
        // first one bit (from either side).
        let width = swipe.readTracks.first?.format?.characterWidth ?? swipe.tracks.first?.format?.characterWidth ?? 7
        /// The run of zeros from `k` outward (by `step`), up to the first one bit; where a one bit
        /// ends the run, its last `width - 1` zeros stay hidden, since they may be the start of
        /// a character (a second copy of the track, or a stray frame) rather than clocking zeros.
        /// Without a frame the run starts beside a one bit of the data, so its first `width - 1`
        /// zeros (`besideData`) may be the end of a character too.
        func zeros(from k: Int, by step: Int, besideData: Bool = false) {
            var end = k
            while end >= 0 && end < n && bits[end] == 0 { end += step }
            let inner = besideData ? width - 1 : 0
            let outer = end >= 0 && end < n ? width - 1 : 0
            let length = abs(end - k)
            guard length > inner + outer else { return }
            for j in inner..<(length - outer) { visible[k + j * step] = true }
        }
        guard let (frame, characters) = maskedFrame(swipe, cellCount: n) else {
            // Nothing read: only the zeros before the first one bit and after the last.
            guard let first = bits.firstIndex(of: 1), let last = bits.lastIndex(of: 1) else { return visible }
            zeros(from: first - 1, by: -1, besideData: true)
            zeros(from: last + 1, by: 1, besideData: true)
            return visible
        }
        let separator = characters.firstIndex { $0 == "^" || $0 == "=" } ?? characters.count
        let lastMasked = characters[..<separator].lastIndex(of: "*") ?? 0
        // What the CARD shows: the characters after the PAN's masked part that it leaves clear.
        for (c, cells) in frame.characterCells.enumerated() where c > lastMasked && characters[c] != "*" {
            for k in cells { visible[k] = true }
        }
        let all = frame.characterCells + [frame.lrcCells]
        let low = all.map(\.lowerBound).min() ?? 0, high = all.map(\.upperBound).max() ?? 0
        zeros(from: low - 1, by: -1)
        zeros(from: high, by: 1)
        return visible
    }

    /// The read track's frame and its masked characters, when the two agree with each other and
    /// with the timeline (one frame character per masked character, every cell on the timeline).
    static func maskedFrame(_ swipe: Swipe, cellCount: Int) -> (TrackFrame, [Character])? {
        guard let track = swipe.readTracks.first, let frame = track.frame, let masked = track.masked?.text else { return nil }
        let characters = Array(masked)
        let cells = frame.characterCells + [frame.lrcCells]
        guard characters.count == frame.characterCells.count,
              cells.allSatisfy({ $0.lowerBound >= 0 && $0.upperBound <= cellCount }) else { return nil }
        return (frame, characters)
    }

    static func svg(_ result: SwipeResult, device: String) -> String {
        let swipe = result.swipe
        let rate = Double(result.rate)
        let margin = 0.05
        let t0 = max(0, swipe.start - margin), t1 = min(Double(result.audio.count) / rate, swipe.end + margin)
        let width = 1600.0, left = 60.0, right = 20.0
        let plotWidth = width - left - right
        let span = max(1e-3, t1 - t0)
        func x(_ t: Double) -> Double { left + (t - t0) / span * plotWidth }
        func fmt(_ v: Double) -> String { format1(v) }
        let timeline = swipe.timeline
        let cells = timeline?.cellBoundaries ?? []
        let visibleCell = timeline.map { visibleCells(swipe, timeline: $0) } ?? []
        /// Time ranges where detail may be drawn: runs of visible cells.
        var shown: [ClosedRange<Double>] = []
        var k = 0
        while k < visibleCell.count {
            guard visibleCell[k], k + 1 < cells.count else { k += 1; continue }
            var j = k
            while j + 1 < visibleCell.count && visibleCell[j + 1] && j + 2 < cells.count { j += 1 }
            shown.append(cells[k]...cells[j + 1])
            k = j + 1
        }
        /// Whether a span of time lies wholly in a shown stretch (a pixel column can be wider
        /// than a whole character of a slow swipe).
        func isShown(_ a: Double, _ b: Double) -> Bool { shown.contains { $0.lowerBound <= a && b <= $0.upperBound } }
        /// The stretches drawn as envelope alone: the rest of the plot's time axis.
        var hidden: [ClosedRange<Double>] = []
        var from = t0
        for range in shown.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if range.lowerBound > from { hidden.append(from...min(t1, range.lowerBound)) }
            from = max(from, range.upperBound)
        }
        if from < t1 { hidden.append(from...t1) }

        var out: [String] = []
        out.append(##"<?xml version="1.0" encoding="UTF-8"?>"##)
        out.append(##"<svg xmlns="http://www.w3.org/2000/svg" width="1600" height="640" viewBox="0 0 1600 640" font-family="sans-serif" font-size="12">"##)
        out.append(##"<rect x="0" y="0" width="1600" height="640" fill="white"/>"##)
        let read = swipe.readTracks.compactMap { $0.format.map { "\($0)" } }.joined(separator: ", ")
        var title = "posminid diagnose: swipe on \(device): " + (read.isEmpty ? "not read (\(swipe.problem?.rawValue ?? "?"))" : "\(read) read")
        if let direction = swipe.direction { title += ", \(direction.rawValue)" }
        if let speed = swipe.speed { title += ", \(Int(speed.mean.rounded())) cm/s" }
        out.append(##"<text x="60" y="20" font-size="15">\##(escape(title))</text>"##)

        // Waveform: per pixel column the min and max; in hidden stretches only the envelope.
        let top = 40.0, mid = top + 140.0
        // Scaled to the swipe's peak (the title and the level check give the level itself).
        var peak: Float = 1e-6
        for i in max(0, Int(t0 * rate))..<min(result.audio.count, Int(t1 * rate)) { peak = max(peak, abs(result.audio[i])) }
        let height = 280.0 * 0.95 / Double(peak)
        out.append(##"<g id="waveform"><line x1="60" y1="\##(fmt(mid))" x2="1580" y2="\##(fmt(mid))" stroke="#ccc"/>"##)
        let columns = Int(plotWidth)
        var path = "", envelope: [(Double, Float)] = []
        // Four cells at the swipe's slowest, and at least 20 ms.
        let longestCell = zip(cells.dropFirst(), cells).map { $0 - $1 }.max() ?? 0
        let envelopeWindow = Int(max(0.02, 4 * longestCell) * rate)
        for column in 0..<columns {
            let ta = t0 + Double(column) / Double(columns) * span, tb = t0 + Double(column + 1) / Double(columns) * span
            let a = max(0, Int(ta * rate)), b = min(result.audio.count, max(a + 1, Int(tb * rate)))
            guard a < b else { continue }
            var lo: Float = 1, hi: Float = -1
            for i in a..<b { lo = min(lo, result.audio[i]); hi = max(hi, result.audio[i]) }
            let px = left + Double(column)
            if !isShown(ta, tb) {
                // The largest |sample| over a window several cells wide: a band that follows the
                // signal's strength without showing where any one pulse is.
                let centre = (a + b) / 2
                let from = max(0, centre - envelopeWindow / 2), to = min(result.audio.count, centre + envelopeWindow / 2)
                var strength: Float = 0
                for i in from..<max(from, to) { strength = max(strength, abs(result.audio[i])) }
                envelope.append((px, strength))
            } else {
                path += "M\(fmt(px)) \(fmt(mid - Double(hi) * height / 2))V\(fmt(mid - Double(lo) * height / 2))"
            }
        }
        out.append(##"<path d="\##(path)" stroke="#1f5fa8" stroke-width="1" fill="none"/>"##)
        // The envelope of the hidden stretches: a filled band, no pulses.
        var band = ""
        for (px, a) in envelope {
            band += "M\(fmt(px)) \(fmt(mid - Double(a) * height / 2))V\(fmt(mid + Double(a) * height / 2))"
        }
        out.append(##"<path class="envelope" d="\##(band)" stroke="#bbb" stroke-width="1" fill="none"/>"##)
        for range in hidden {
            out.append(##"<rect class="masked" x="\##(fmt(x(range.lowerBound)))" y="\##(fmt(top))" width="\##(fmt(max(1, x(range.upperBound) - x(range.lowerBound))))" height="280" fill="#999" fill-opacity="0.12"/>"##)
        }
        out.append("</g>")

        // Flux transitions, in the shown stretches only.
        out.append(##"<g id="transitions">"##)
        for t in timeline?.transitions ?? [] where t >= t0 && t <= t1 && isShown(t, t) {
            out.append(##"<line class="transition" x1="\##(fmt(x(t)))" y1="\##(fmt(top))" x2="\##(fmt(x(t)))" y2="\##(fmt(top + 8))" stroke="#d62728"/>"##)
        }
        out.append("</g>")

        // Bit cells and their bits; hidden cells as a grey band.
        let cellTop = 330.0
        out.append(##"<g id="cells">"##)
        if let timeline {
            for c in 0..<min(timeline.bits.count, max(0, cells.count - 1)) {
                let a = x(cells[c]), b = x(cells[c + 1])
                if !visibleCell[c] {
                    out.append(##"<rect class="masked-cell" x="\##(fmt(a))" y="\##(fmt(cellTop))" width="\##(fmt(max(0.5, b - a)))" height="18" fill="#ddd"/>"##)
                } else {
                    // The bit as the cell's shade (1 dark, 0 light), and as a digit where there is room.
                    let bit = timeline.bits[c]
                    out.append(##"<rect class="cell" data-bit="\##(bit)" x="\##(fmt(a))" y="\##(fmt(cellTop))" width="\##(fmt(max(0.5, b - a)))" height="18" fill="\##(bit == 1 ? "#7f9fd4" : "#e6ebf6")" stroke="white" stroke-width="0.3"/>"##)
                    if b - a >= 7 {
                        out.append(##"<text class="bit" x="\##(fmt((a + b) / 2))" y="\##(fmt(cellTop + 13))" text-anchor="middle" font-size="10">\##(timeline.bits[c])</text>"##)
                    }
                }
            }
        }
        out.append("</g>")

        // The characters, masked as in the CARD, over their cells.
        out.append(##"<g id="characters">"##)
        if let timeline, let (frame, characters) = maskedFrame(swipe, cellCount: timeline.bits.count),
           cells.count > timeline.bits.count {
            for (range, character) in zip(frame.characterCells, characters) {
                let ta = cells[range.lowerBound], tb = cells[range.upperBound]
                out.append(##"<text class="character" x="\##(fmt((x(ta) + x(tb)) / 2))" y="366" text-anchor="middle" font-family="monospace">\##(escape(String(character)))</text>"##)
            }
        }
        out.append("</g>")

        // Speed over the swipe: cell length over cell duration, smoothed over 16 cells.
        let speedTop = 400.0, speedHeight = 180.0
        out.append(##"<g id="speed"><text x="60" y="\##(fmt(speedTop - 6))">speed (cm/s)</text>"##)
        if let format = swipe.readTracks.first?.format ?? swipe.tracks.first?.format, cells.count > 17 {
            let cellCM = format.cellLengthMillimetres / 10
            var points: [(Double, Double)] = []
            for c in stride(from: 0, to: cells.count - 16, by: 4) {
                let duration = cells[c + 16] - cells[c]
                if duration > 0 { points.append(((cells[c] + cells[c + 16]) / 2, 16 * cellCM / duration)) }
            }
            let maximum = max(10, (points.map(\.1).max() ?? 10) * 1.1)
            out.append(##"<rect x="60" y="\##(fmt(speedTop))" width="\##(fmt(plotWidth))" height="\##(fmt(speedHeight))" fill="none" stroke="#ccc"/>"##)
            let line = points.map { "\(fmt(x($0.0))),\(fmt(speedTop + speedHeight - $0.1 / maximum * speedHeight))" }.joined(separator: " ")
            out.append(##"<polyline points="\##(line)" fill="none" stroke="#2ca02c" stroke-width="2"/>"##)
            out.append(##"<text x="56" y="\##(fmt(speedTop + 10))" text-anchor="end">\##(Int(maximum))</text><text x="56" y="\##(fmt(speedTop + speedHeight))" text-anchor="end">0</text>"##)
        }
        out.append("</g>")

        // Time axis, milliseconds from the start of the swipe.
        out.append(##"<g id="axis">"##)
        let step = span > 1.5 ? 0.2 : (span > 0.6 ? 0.1 : 0.05)
        var t = (t0 / step).rounded(.up) * step
        while t <= t1 {
            out.append(##"<line x1="\##(fmt(x(t)))" y1="600" x2="\##(fmt(x(t)))" y2="606" stroke="#333"/><text x="\##(fmt(x(t)))" y="620" text-anchor="middle">\##(Int(((t - swipe.start) * 1000).rounded())) ms</text>"##)
            t += step
        }
        out.append("</g>")
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
