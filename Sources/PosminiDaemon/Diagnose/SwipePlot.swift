import SwipeDecoder
import Magstripe

/// The swipe as a picture for the provider: the waveform with the flux transitions marked, the
/// bit cells and the (masked) characters along the time axis, and the speed over the swipe.
///
/// The waveform and the bits encode the card. From the start sentinel through the end of the
/// PAN's masked part, every character masked in the CARD (the discretionary data), and the LRC,
/// the plot shows only the signal's envelope and the masked characters: no pulse, transition
/// or bit. A swipe that did not read shows the envelope over all of its data.
enum SwipePlot {
    /// Cells (time order) whose pulses and bits may not be drawn.
    ///
    /// The masked characters are placed by the decoder's frame (the cells it read each
    /// character from), never by the bits themselves: a stray one bit among the clocking zeros
    /// would move a stretch found that way off the PAN.
    static func sensitiveCells(_ swipe: Swipe, timeline: SwipeTimeline) -> [Bool] {
        let n = timeline.bits.count
        var sensitive = [Bool](repeating: false, count: n)
        guard n > 0 else { return sensitive }
        guard let (frame, characters) = maskedFrame(swipe, cellCount: n) else {
            // Nothing to place the characters by: every cell from the first to the last one bit.
            if let first = timeline.bits.firstIndex(of: 1), let last = timeline.bits.lastIndex(of: 1) {
                for k in first...last { sensitive[k] = true }
            }
            return sensitive
        }
        let separator = characters.firstIndex { $0 == "^" || $0 == "=" } ?? characters.count
        let lastMasked = characters[..<separator].lastIndex(of: "*") ?? 0
        // From the start sentinel through the PAN's masked part, every masked character, the LRC.
        for (c, cells) in frame.characterCells.enumerated() where c <= lastMasked || characters[c] == "*" {
            for k in cells { sensitive[k] = true }
        }
        for k in frame.lrcCells { sensitive[k] = true }
        return sensitive
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
        let sensitive = timeline.map { sensitiveCells(swipe, timeline: $0) } ?? []
        /// Time ranges not to draw pulses in.
        var hidden: [ClosedRange<Double>] = []
        var k = 0
        while k < sensitive.count {
            guard sensitive[k], k + 1 < cells.count else { k += 1; continue }
            var j = k
            while j + 1 < sensitive.count && sensitive[j + 1] { j += 1 }
            hidden.append(cells[k]...cells[min(j + 1, cells.count - 1)])
            k = j + 1
        }
        if timeline == nil { hidden.append(swipe.start...swipe.end) }
        func isHidden(_ t: Double) -> Bool { hidden.contains { $0.contains(t) } }
        /// Whether a span of time reaches into a hidden stretch (a pixel column can be wider
        /// than a whole character of a slow swipe).
        func touchesHidden(_ a: Double, _ b: Double) -> Bool { hidden.contains { $0.lowerBound <= b && a <= $0.upperBound } }

        var out: [String] = []
        out.append(##"<?xml version="1.0" encoding="UTF-8"?>"##)
        out.append(##"<svg xmlns="http://www.w3.org/2000/svg" width="1600" height="640" viewBox="0 0 1600 640" font-family="sans-serif" font-size="12">"##)
        out.append(##"<rect x="0" y="0" width="1600" height="640" fill="white"/>"##)
        let read = swipe.readTracks.compactMap { $0.format.map { "Track \($0.number)" } }.joined(separator: ", ")
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
            if touchesHidden(ta, tb) {
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

        // Flux transitions, outside the hidden stretches.
        out.append(##"<g id="transitions">"##)
        for t in timeline?.transitions ?? [] where t >= t0 && t <= t1 && !isHidden(t) {
            out.append(##"<line class="transition" x1="\##(fmt(x(t)))" y1="\##(fmt(top))" x2="\##(fmt(x(t)))" y2="\##(fmt(top + 8))" stroke="#d62728"/>"##)
        }
        out.append("</g>")

        // Bit cells and their bits; hidden cells as a grey band.
        let cellTop = 330.0
        out.append(##"<g id="cells">"##)
        if let timeline {
            for c in 0..<min(timeline.bits.count, max(0, cells.count - 1)) {
                let a = x(cells[c]), b = x(cells[c + 1])
                if sensitive[c] {
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
