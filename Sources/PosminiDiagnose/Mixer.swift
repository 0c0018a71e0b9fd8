import ReaderIO
import PosminiConfig

/// The mixer checks of one card: capture switch, capture volume, input source, processing, mic
/// boost; and `--fix`, which sets them.
struct MixerCheck {
    static let all = [("mixer.capture_switch", "Capture switch"), ("mixer.capture_volume", "Capture volume"),
                      ("mixer.input_source", "Input source"), ("mixer.processing", "Sound processing"),
                      ("mixer.mic_boost", "Mic boost")]

    let mixer: ALSAMixer
    let entry: CompatibilityEntry?
    /// The mixer's controls as last read (once, and again after `fix()` changed them).
    private(set) var controls: [MixerControl]

    init(mixer: ALSAMixer, entry: CompatibilityEntry?) {
        self.mixer = mixer
        self.entry = entry
        controls = mixer.controls()
    }

    static func isBoost(_ c: MixerControl) -> Bool { c.name.contains("Boost") }
    static func isProcessing(_ c: MixerControl) -> Bool {
        let words = ["Auto Gain", "AGC", "Noise", "Echo", "Enhance", "Effect", "Beamform", "Loudness"]
        let name = c.name.lowercased()
        return words.contains { name.contains($0.lowercased()) }
    }
    static func isSource(_ c: MixerControl) -> Bool {
        c.enumeration != nil && ["Input Source", "Capture Source", "Input Select", "Capture Select"].contains { c.name.hasPrefix($0) }
    }

    /// Capture-path volumes: not boosts, not processing.
    var volumes: [MixerControl] { controls.filter { $0.captureVolume != nil && !Self.isBoost($0) && !Self.isProcessing($0) } }
    var switches: [MixerControl] { controls.filter { $0.captureSwitch != nil && !Self.isProcessing($0) } }
    var processing: [MixerControl] { controls.filter { Self.isProcessing($0) && ($0.captureSwitch != nil || $0.playbackSwitch != nil) } }
    var target: Double { Double(entry?.captureVolume ?? 100) / 100 }

    /// The input source item a reader wants: the list's, else a headset or microphone jack.
    func preferredSource(_ items: [String]) -> Int? {
        if let wanted = entry?.inputSource { return items.firstIndex(of: wanted) }
        for name in ["Headset Mic", "Mic", "Rear Mic", "Front Mic", "Line"] {
            if let k = items.firstIndex(where: { $0 == name }) { return k }
        }
        return items.firstIndex { $0.contains("Mic") && !$0.contains("Internal") && !$0.contains("Dock") }
    }

    /// Sets what is off; returns what it changed.
    mutating func fix() -> [String] {
        var changed: [String] = []
        for c in switches where c.captureSwitch?.contains(false) == true {
            if (try? mixer.setCaptureSwitch(c.name, index: c.index, on: true)) != nil { changed.append("'\(c.name)' capture switched on") }
        }
        for c in volumes where (c.captureLevel ?? 1) < target - 0.005 {
            if (try? mixer.setCaptureLevel(c.name, index: c.index, fraction: target)) != nil {
                changed.append("'\(c.name)' capture volume \(Int(((c.captureLevel ?? 0) * 100).rounded())) % → \(Int(target * 100)) %")
            }
        }
        for c in controls where Self.isSource(c) {
            if let (items, current) = c.enumeration, let want = preferredSource(items), want != current,
               (try? mixer.setEnumeration(c.name, index: c.index, item: want)) != nil {
                changed.append("'\(c.name)' \(items[current]) → \(items[want])")
            }
        }
        for c in processing {
            if c.captureSwitch?.contains(true) == true, (try? mixer.setCaptureSwitch(c.name, index: c.index, on: false)) != nil {
                changed.append("'\(c.name)' off")
            } else if c.playbackSwitch?.contains(true) == true, (try? mixer.setPlaybackSwitch(c.name, index: c.index, on: false)) != nil {
                changed.append("'\(c.name)' off")
            }
        }
        if let boost = entry?.micBoost {
            for c in controls where Self.isBoost(c) && c.captureVolume != nil {
                let fraction = Double(boost) / 100
                if abs((c.captureLevel ?? 0) - fraction) > 0.005, (try? mixer.setCaptureLevel(c.name, index: c.index, fraction: fraction)) != nil {
                    changed.append("'\(c.name)' \(Int(((c.captureLevel ?? 0) * 100).rounded())) % → \(boost) %")
                }
            }
        }
        if !changed.isEmpty { controls = mixer.controls() }
        return changed
    }

    func evaluate() -> [DiagnoseCheck] {
        var out: [DiagnoseCheck] = []
        let fixHint = "(`posminid --diagnose --fix` sets it)"
        let muted = switches.filter { $0.captureSwitch?.contains(false) == true }
        if switches.isEmpty {
            out.append(DiagnoseCheck("mixer.capture_switch", "Capture switch", .notApplicable, value: "no capture switch"))
        } else {
            out.append(DiagnoseCheck("mixer.capture_switch", "Capture switch", muted.isEmpty ? .pass : .fail,
                                     value: .string(muted.isEmpty ? "on" : "muted: " + muted.map(\.name).joined(separator: ", ")),
                                     advice: "the capture is muted (\"silent mode\"): switch it on \(fixHint)"))
        }
        if volumes.isEmpty {
            out.append(DiagnoseCheck("mixer.capture_volume", "Capture volume", .notApplicable, value: "no capture volume"))
        } else {
            let lowest = volumes.compactMap(\.captureLevel).min() ?? 1
            let percent = (lowest * 100).rounded()
            let status: DiagnoseCheck.Status = lowest >= target - 0.005 ? .pass : (lowest >= 0.5 ? .warn : .fail)
            out.append(DiagnoseCheck("mixer.capture_volume", "Capture volume", status, value: .number(percent), unit: "%",
                                     advice: "the capture volume must be at \(entry?.captureVolume.map { "\($0) %" } ?? "maximum"): raise it \(fixHint)"))
        }
        if let source = controls.first(where: Self.isSource), let (items, current) = source.enumeration, current < items.count {
            let want = preferredSource(items)
            out.append(DiagnoseCheck("mixer.input_source", "Input source", want == nil || want == current ? .pass : .warn,
                                     value: .string(items[current]),
                                     advice: "the card records from \(items[current]), not the jack: set \(source.name) to \(want.map { items[$0] } ?? "the jack's microphone") \(fixHint)"))
        } else {
            out.append(DiagnoseCheck("mixer.input_source", "Input source", .notApplicable, value: "no input source control"))
        }
        if processing.isEmpty {
            out.append(DiagnoseCheck("mixer.processing", "Sound processing", .notApplicable, value: "no processing controls"))
        } else {
            let on = processing.filter { ($0.captureSwitch ?? $0.playbackSwitch ?? []).contains(true) }
            out.append(DiagnoseCheck("mixer.processing", "Sound processing", on.isEmpty ? .pass : .warn,
                                     value: .string(on.isEmpty ? "off" : "on: " + on.map(\.name).joined(separator: ", ")),
                                     advice: "\"sound effects\" processing reshapes the reader's pulses: switch it off \(fixHint)"))
        }
        let boosts = controls.filter { Self.isBoost($0) && $0.captureVolume != nil }
        if let boost = boosts.first, let level = boost.captureLevel {
            let percent = (level * 100).rounded()
            let wanted = entry?.micBoost
            let ok = wanted.map { abs(Double($0) - percent) <= 1 } ?? true
            out.append(DiagnoseCheck("mixer.mic_boost", "Mic boost", ok ? .pass : .warn, value: .number(percent), unit: "%",
                                     advice: "the compatibility list sets \(boost.name) to \(wanted ?? 0) % for this device \(fixHint)"))
        } else {
            out.append(DiagnoseCheck("mixer.mic_boost", "Mic boost", .notApplicable, value: "no mic boost control"))
        }
        return out
    }
}
