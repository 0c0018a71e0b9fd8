import CALSA
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One simple-mixer control of a card, as diagnose reads and sets it.
public struct MixerControl: Sendable, Hashable {
    public var name: String
    public var index: Int
    /// Capture volume: the raw range and each channel's value.
    public var captureVolume: (range: ClosedRange<Int>, values: [Int])?
    /// Capture switch per channel (true: capturing, false: muted).
    public var captureSwitch: [Bool]?
    /// Playback switch per channel (for on/off processing controls exposed as switches).
    public var playbackSwitch: [Bool]?
    /// An enumerated control (HDA `Input Source`): its items and the current one.
    public var enumeration: (items: [String], current: Int)?

    /// Capture volume as a fraction of its range (the lowest channel).
    public var captureLevel: Double? {
        guard let volume = captureVolume, volume.range.upperBound > volume.range.lowerBound, let low = volume.values.min() else { return nil }
        return Double(low - volume.range.lowerBound) / Double(volume.range.upperBound - volume.range.lowerBound)
    }

    public static func == (a: MixerControl, b: MixerControl) -> Bool {
        a.name == b.name && a.index == b.index && a.captureVolume?.range == b.captureVolume?.range
            && a.captureVolume?.values == b.captureVolume?.values && a.captureSwitch == b.captureSwitch
            && a.playbackSwitch == b.playbackSwitch && a.enumeration?.items == b.enumeration?.items
            && a.enumeration?.current == b.enumeration?.current
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(index)
    }
}

/// A card's ALSA simple mixer (`amixer`'s view), opened on a control device name (`hw:1`,
/// `hw:CARD=PCH`, `pulse`).
public final class ALSAMixer {
    public let device: String
    private var mixer: OpaquePointer?

    public init(device: String) throws(ALSAError) {
        self.device = device
        posmini_alsa_quiet()
        var handle: OpaquePointer?
        var rc = snd_mixer_open(&handle, 0)
        guard rc == 0, let handle else { throw ALSAError(device: device, call: "snd_mixer_open", code: rc) }
        rc = snd_mixer_attach(handle, device)
        if rc == 0 { rc = snd_mixer_selem_register(handle, nil, nil) }
        if rc == 0 { rc = snd_mixer_load(handle) }
        guard rc == 0 else {
            snd_mixer_close(handle)
            throw ALSAError(device: device, call: "snd_mixer_attach", code: rc)
        }
        mixer = handle
    }

    deinit { if let mixer { snd_mixer_close(mixer) } }

    /// Every control, in the mixer's order.
    public func controls() -> [MixerControl] {
        var out: [MixerControl] = []
        forEach { element, name, index in out.append(Self.read(element, name: name, index: index)) }
        return out
    }

    /// Capture volume of `name` to `fraction` of its range, every channel.
    public func setCaptureLevel(_ name: String, index: Int = 0, fraction: Double) throws(ALSAError) {
        try with(name, index) { element throws(ALSAError) in
            var low = 0, high = 0
            snd_mixer_selem_get_capture_volume_range(element, &low, &high)
            let value = low + Int((Double(high - low) * min(1, max(0, fraction))).rounded())
            let rc = snd_mixer_selem_set_capture_volume_all(element, value)
            guard rc == 0 else { throw ALSAError(device: device, call: "snd_mixer_selem_set_capture_volume_all", code: rc) }
        }
    }

    public func setCaptureSwitch(_ name: String, index: Int = 0, on: Bool) throws(ALSAError) {
        try with(name, index) { element throws(ALSAError) in
            let rc = snd_mixer_selem_set_capture_switch_all(element, on ? 1 : 0)
            guard rc == 0 else { throw ALSAError(device: device, call: "snd_mixer_selem_set_capture_switch_all", code: rc) }
        }
    }

    public func setPlaybackSwitch(_ name: String, index: Int = 0, on: Bool) throws(ALSAError) {
        try with(name, index) { element throws(ALSAError) in
            let rc = snd_mixer_selem_set_playback_switch_all(element, on ? 1 : 0)
            guard rc == 0 else { throw ALSAError(device: device, call: "snd_mixer_selem_set_playback_switch_all", code: rc) }
        }
    }

    public func setEnumeration(_ name: String, index: Int = 0, item: Int) throws(ALSAError) {
        try with(name, index) { element throws(ALSAError) in
            var rc: Int32 = 0
            for channel in Self.channels where rc == 0 {
                var current: UInt32 = 0
                // Only the channels the control has answer a read.
                guard snd_mixer_selem_get_enum_item(element, channel, &current) == 0 else { continue }
                rc = snd_mixer_selem_set_enum_item(element, channel, UInt32(item))
            }
            guard rc == 0 else { throw ALSAError(device: device, call: "snd_mixer_selem_set_enum_item", code: rc) }
        }
    }

    // MARK: Internals

    private func forEach(_ body: (OpaquePointer, String, Int) -> Void) {
        guard let mixer else { return }
        var element = snd_mixer_first_elem(mixer)
        while let current = element {
            if snd_mixer_selem_is_active(current) == 1, let cName = snd_mixer_selem_get_name(current) {
                body(current, String(cString: cName), Int(snd_mixer_selem_get_index(current)))
            }
            element = snd_mixer_elem_next(current)
        }
    }

    private func with(_ name: String, _ index: Int, _ body: (OpaquePointer) throws(ALSAError) -> Void) throws(ALSAError) {
        var found: OpaquePointer?
        forEach { element, n, i in if n == name && i == index { found = element } }
        guard let found else { throw ALSAError(device: device, call: "no mixer control '\(name)'", code: -ENOENT) }
        try body(found)
        // Settings take effect in the driver; read them back on the next `controls()`.
        if let mixer { snd_mixer_handle_events(mixer) }
    }

    private static let channels: [snd_mixer_selem_channel_id_t] = (0...Int(SND_MIXER_SCHN_LAST.rawValue)).map {
        snd_mixer_selem_channel_id_t(rawValue: Int32($0))
    }

    private static func read(_ element: OpaquePointer, name: String, index: Int) -> MixerControl {
        var control = MixerControl(name: name, index: index)
        if snd_mixer_selem_has_capture_volume(element) == 1 {
            var low = 0, high = 0
            snd_mixer_selem_get_capture_volume_range(element, &low, &high)
            var values: [Int] = []
            for channel in channels where snd_mixer_selem_has_capture_channel(element, channel) == 1 {
                var value = 0
                if snd_mixer_selem_get_capture_volume(element, channel, &value) == 0 { values.append(value) }
            }
            control.captureVolume = (low...max(low, high), values)
        }
        if snd_mixer_selem_has_capture_switch(element) == 1 {
            var switches: [Bool] = []
            for channel in channels where snd_mixer_selem_has_capture_channel(element, channel) == 1 {
                var value: Int32 = 0
                if snd_mixer_selem_get_capture_switch(element, channel, &value) == 0 { switches.append(value != 0) }
            }
            control.captureSwitch = switches
        }
        if snd_mixer_selem_has_playback_switch(element) == 1 && snd_mixer_selem_has_playback_volume(element) == 0 {
            var switches: [Bool] = []
            for channel in channels where snd_mixer_selem_has_playback_channel(element, channel) == 1 {
                var value: Int32 = 0
                if snd_mixer_selem_get_playback_switch(element, channel, &value) == 0 { switches.append(value != 0) }
            }
            control.playbackSwitch = switches
        }
        if snd_mixer_selem_is_enumerated(element) == 1 {
            let count = max(0, snd_mixer_selem_get_enum_items(element))
            var items: [String] = []
            var buffer = [CChar](repeating: 0, count: 128)
            for item in 0..<count {
                if snd_mixer_selem_get_enum_item_name(element, UInt32(item), buffer.count, &buffer) == 0 {
                    items.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
                }
            }
            var current: UInt32 = 0
            snd_mixer_selem_get_enum_item(element, SND_MIXER_SCHN_FRONT_LEFT, &current)
            control.enumeration = (items, Int(current))
        }
        return control
    }
}
