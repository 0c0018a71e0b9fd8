import CALSA
#if canImport(Glibc)
import Glibc
#endif

/// A sound card as udev describes it (the `sound` subsystem's `cardN` device).
public struct SoundCard: Sendable, Hashable {
    /// `/sys/devices/…/sound/card1`: the key while the card exists.
    public var syspath: String
    /// ALSA's card number (`N` of `cardN`).
    public var number: Int?
    /// ALSA's card id (`PCH`, `Device`): what `hw:CARD=…` names.
    public var cardID: String?
    /// The udev properties posminid reads (the others are not kept).
    public var properties: [String: String]

    public static let keptProperties = ["ID_PATH", "ID_SERIAL", "ID_MODEL", "ID_MODEL_FROM_DATABASE", "ID_VENDOR",
                                        "ID_VENDOR_FROM_DATABASE", "ID_VENDOR_ID", "ID_MODEL_ID", "ID_BUS", "POSMINI_READER", "SOUND_INITIALIZED",
                                        "SOUND_CLASS"]

    public init(syspath: String, number: Int? = nil, cardID: String? = nil, properties: [String: String] = [:]) {
        self.syspath = syspath
        self.number = number
        self.cardID = cardID
        self.properties = properties
    }

    /// udev has finished with the card (its rules ran, its mixer is set up): `SOUND_INITIALIZED=1`.
    public var isInitialized: Bool { properties["SOUND_INITIALIZED"] == "1" }
    /// A modem's "sound card": never a reader.
    public var isModem: Bool { properties["SOUND_CLASS"] == "modem" }
    /// Marked by our udev rules as a dedicated reader adapter.
    public var isMarkedReader: Bool { properties["POSMINI_READER"] == "1" }

    /// A stable identity: the serial number (USB) at the port (`ID_PATH`), so that the same reader
    /// replugged into the same port is the same reader; without a port path, the ALSA card id.
    public var stableID: String {
        let serial = properties["ID_SERIAL"].flatMap { $0.isEmpty ? nil : $0 }
        if let path = properties["ID_PATH"], !path.isEmpty {
            return serial.map { "\($0)@\(path)" } ?? path
        }
        if let serial { return serial }
        if let cardID { return "card-\(cardID)" }
        return "card\(number ?? -1)"
    }

    /// A name for people: the model (from the USB database if udev has it), else the card id.
    public var displayName: String {
        let model = properties["ID_MODEL_FROM_DATABASE"] ?? properties["ID_MODEL"].map { String($0.map { $0 == "_" ? " " : $0 }) }
        if let model, !model.isEmpty { return model }
        return cardID ?? "sound card \(number ?? -1)"
    }

    /// The ALSA capture device of the card's first PCM. By number: the card as it is now (two
    /// identical adapters have ids `Device` and `Device_1` in plugging order).
    public var captureDevice: String {
        if let number { return "hw:\(number),0" }
        return "hw:CARD=\(cardID ?? "0"),DEV=0"
    }

    /// The ALSA control device of the card (its mixer and jack controls).
    public var controlDevice: String {
        if let number { return "hw:\(number)" }
        return "hw:CARD=\(cardID ?? "0")"
    }

    /// A configured device name (`plughw:CARD=PCH,DEV=0`) with its card given by this card's
    /// number (`plughw:CARD=1,DEV=0`): the same device, without alsa-lib looking the id up.
    public func resolving(_ device: String) -> String {
        guard let number, CardReference(device: device) != nil, let colon = device.firstIndex(of: ":") else { return device }
        var arguments = device[device.index(after: colon)...].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        arguments[0] = arguments[0].hasPrefix("CARD=") ? "CARD=\(number)" : "\(number)"
        return device[...colon] + arguments.joined(separator: ",")
    }

    /// `vvvv:pppp` for a USB card.
    public var usbID: String? {
        guard let vendor = properties["ID_VENDOR_ID"], let product = properties["ID_MODEL_ID"] else { return nil }
        return "\(vendor.lowercased()):\(product.lowercased())"
    }

    /// Whether `reference` (from a configured device name) names this card.
    public func matches(_ reference: CardReference) -> Bool {
        switch reference {
        case .number(let n): return number == n
        case .id(let id): return cardID == id
        }
    }
}

/// The card an ALSA device name points at: `hw:CARD=PCH,DEV=0`, `plughw:1`, `hw:0,0`,
/// `sysdefault:CARD=PCH`. Names that do not point at one card (`default`, `pulse`, a plugin
/// defined in asoundrc) have none.
public enum CardReference: Sendable, Hashable, CustomStringConvertible {
    case number(Int)
    case id(String)

    public init?(device: String) {
        guard let (plugin, arguments) = Self.split(device),
              ["hw", "plughw", "sysdefault", "dsnoop", "front"].contains(plugin) else { return nil }
        guard let first = arguments.first else { return nil }
        var value: Substring
        if let equals = first.firstIndex(of: "=") {
            guard first[..<equals] == "CARD" else { return nil }
            value = first[first.index(after: equals)...]
        } else {
            value = first
        }
        if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = value.dropFirst().dropLast() }
        guard !value.isEmpty else { return nil }
        if let n = Int(value), n >= 0 { self = .number(n) } else { self = .id(String(value)) }
    }

    /// The PCM device number an ALSA device name points at: `DEV=` or the second positional
    /// argument (`hw:CARD=PCH,DEV=2`, `hw:0,2`); 0 when it names none.
    public static func deviceNumber(in device: String) -> Int {
        guard let (_, arguments) = split(device) else { return 0 }
        for argument in arguments where argument.hasPrefix("DEV=") {
            if let n = Int(argument.dropFirst(4)) { return n }
        }
        if arguments.count >= 2, !arguments[1].contains("="), let n = Int(arguments[1]) { return n }
        return 0
    }

    /// `plugin:a,b,…` into the plugin and its arguments.
    private static func split(_ device: String) -> (plugin: Substring, arguments: [Substring])? {
        guard let colon = device.firstIndex(of: ":") else { return nil }
        return (device[..<colon], device[device.index(after: colon)...].split(separator: ","))
    }

    public var description: String {
        switch self {
        case .number(let n): return "card \(n)"
        case .id(let id): return "card \(id)"
        }
    }
}

/// ALSA's own view of the cards.
public enum ALSACards {
    /// The number of the card with ALSA id `id`, if there is one.
    public static func index(of id: String) -> Int? {
        posmini_alsa_quiet()
        let n = snd_card_get_index(id)
        return n >= 0 ? Int(n) : nil
    }
}

/// Which processes hold a sound device open (for "the device is busy": who).
public enum DeviceHolders {
    public struct Holder: Sendable, Hashable {
        public var pid: Int32
        public var name: String
    }

    /// Processes with `/dev/snd/pcmC<card>D<device>c` open (this one excluded). Reads /proc;
    /// processes of other users are only visible to root.
    public static func find(card: Int, device: Int) -> [Holder] {
        find(path: "/dev/snd/pcmC\(card)D\(device)c")
    }

    /// Processes with `target` open (this one excluded).
    public static func find(path target: String) -> [Holder] {
        var holders: [Holder] = []
        let me = getpid()
        for name in FileBytes.entries(ofDirectory: "/proc") {
            guard let pid = Int32(name), pid != me else { continue }
            let holds = FileBytes.entries(ofDirectory: "/proc/\(name)/fd").contains {
                FileBytes.linkTarget("/proc/\(name)/fd/\($0)") == target
            }
            if holds {
                let comm = String(decoding: (try? FileBytes.read("/proc/\(name)/comm", limit: 256)) ?? [], as: UTF8.self)
                holders.append(Holder(pid: pid, name: comm.split(separator: "\n").first.map(String.init) ?? "?"))
            }
        }
        return holders.sorted { $0.pid < $1.pid }
    }
}
