/// Prometheus's text exposition format (version 0.0.4): what node_exporter's textfile collector
/// reads and `/metrics` serves. Families are written whole, each once, `# HELP` and `# TYPE`
/// first; label values are escaped (backslash, double quote, newline); values are written so
/// that an integer reads as one.
public struct Exposition: Sendable {
    public enum Kind: String, Sendable { case counter, gauge, histogram }

    public private(set) var text = ""
    private var families: Set<String> = []

    public init() {}

    /// Starts family `name`. A family started twice is a programming error.
    public mutating func family(_ name: String, _ kind: Kind, help: String) {
        precondition(!families.contains(name), "metric family \(name) written twice")
        precondition(Self.isValidName(name), "metric name \(name)")
        families.insert(name)
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
    }

    /// One sample of the current family (`suffix` for a histogram's `_bucket`, `_sum`, `_count`).
    public mutating func sample(_ name: String, _ labels: KeyValuePairs<String, String> = [:], _ value: Double) {
        sample(name, Array(labels.map { ($0.key, $0.value) }), value)
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{"
            for (k, (key, v)) in labels.enumerated() {
                if k > 0 { text += "," }
                text += key
                text += "=\""
                text += Self.escapeLabel(v)
                text += "\""
            }
            text += "}"
        }
        text += " "
        text += Self.format(value)
        text += "\n"
    }

    /// A histogram's samples: a cumulative `_bucket` per bound and `+Inf`, then `_sum` and
    /// `_count`, each with `labels`.
    public mutating func histogram(_ name: String, _ labels: [(String, String)], _ h: Histogram) {
        var cumulative = 0
        for (bound, count) in zip(h.bounds, h.counts) {
            cumulative += count
            sample(name + "_bucket", labels + [("le", Self.format(bound))], Double(cumulative))
        }
        sample(name + "_bucket", labels + [("le", "+Inf")], Double(h.count))
        sample(name + "_sum", labels, h.sum)
        sample(name + "_count", labels, Double(h.count))
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first == UInt8(ascii: "_") || first == UInt8(ascii: ":") || isLetter(first) else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ":") || isLetter($0) || ($0 >= 48 && $0 <= 57) }
    }

    private static func isLetter(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }

    /// A label value: backslash, double quote and newline escaped.
    static func escapeLabel(_ s: String) -> String { escaped(s, quote: true) }

    /// A HELP text: backslash and newline escaped (a quote stands as it is).
    static func escapeHelp(_ s: String) -> String { escaped(s, quote: false) }

    private static func escaped(_ s: String, quote: Bool) -> String {
        guard s.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\n") || (quote && $0 == UInt8(ascii: "\"")) }) else {
            return s
        }
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\"" where quote: out += "\\\""
            default: out.append(c)
            }
        }
        return out
    }

    /// An integral value without a fraction; others as Swift writes a Double (shortest round
    /// trip); infinities and NaN as Prometheus spells them.
    public static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }
}

/// A histogram with fixed upper bounds (`le`), counted per bucket (not cumulative) so that an
/// observation touches one slot.
public struct Histogram: Sendable, Hashable {
    public let bounds: [Double]
    public private(set) var counts: [Int]
    public private(set) var sum = 0.0
    public private(set) var count = 0

    public init(bounds: [Double]) {
        precondition(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "histogram bounds must increase")
        self.bounds = bounds
        counts = [Int](repeating: 0, count: bounds.count)
    }

    /// A value above every bound counts only in `+Inf`; NaN is not counted.
    public mutating func observe(_ x: Double) {
        guard !x.isNaN else { return }
        count += 1
        sum += x
        if let i = bounds.firstIndex(where: { x <= $0 }) { counts[i] += 1 }
    }
}
