public import PosminiProtocol

/// One line of the diagnose report: what was checked, what was measured, what to do.
public struct DiagnoseCheck: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        case pass = "PASS", warn = "WARN", fail = "FAIL", notApplicable = "N/A"
    }

    public var id: String
    public var title: String
    public var status: Status
    public var value: JSONValue
    public var unit: String?
    /// One sentence of what to do, for anything that is not PASS.
    public var advice: String?
    /// A WARN or FAIL that a change of settings, port or technique can mend (the device is then
    /// "compatible with changes"); false when the device itself is the problem.
    public var fixable = true
    /// How the value reads in the text report, when the value itself is structured.
    public var display: String?

    public init(_ id: String, _ title: String, _ status: Status, value: JSONValue = .null, unit: String? = nil,
                advice: String? = nil, fixable: Bool = true, display: String? = nil) {
        self.display = display
        self.id = id
        self.title = title
        self.status = status
        self.value = value
        self.unit = unit
        self.advice = advice
        self.fixable = fixable
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = ["id": .string(id), "title": .string(title), "status": .string(status.rawValue),
                                           "value": value]
        if let unit { fields["unit"] = .string(unit) }
        if let advice { fields["advice"] = .string(advice) }
        return .object(fields)
    }

    /// The value as a person reads it.
    public var valueText: String {
        if let display { return display }
        let text: String
        switch value {
        case .null: text = ""
        case .string(let s): text = s
        case .number(let n): text = n == n.rounded() && abs(n) < 1e9 ? String(Int(n)) : String(format1(n))
        case .bool(let b): text = b ? "yes" : "no"
        default: text = value.text
        }
        return unit.map { text.isEmpty ? text : "\(text) \($0)" } ?? text
    }
}

/// One decimal.
func format1(_ x: Double) -> String {
    let tenths = (x * 10).rounded()
    let sign = tenths < 0 ? "-" : ""
    let magnitude = abs(Int(tenths))
    return "\(sign)\(magnitude / 10).\(magnitude % 10)"
}

/// The whole report: the checks in the order a person would do them, and the verdict.
public struct DiagnoseReport: Sendable {
    public enum Verdict: String, Sendable {
        case compatible, compatibleWithChanges = "compatible_with_changes", notCompatible = "not_compatible"

        public var text: String {
            switch self {
            case .compatible: "compatible"
            case .compatibleWithChanges: "compatible with changes"
            case .notCompatible: "not compatible"
            }
        }
    }

    public var device: String
    public var checks: [DiagnoseCheck] = []
    /// Names of the settings `--fix` changed.
    public var fixed: [String] = []

    public init(device: String) { self.device = device }

    public mutating func add(_ check: DiagnoseCheck) { checks.append(check) }

    public var problems: [DiagnoseCheck] { checks.filter { $0.status == .warn || $0.status == .fail } }

    public var verdict: Verdict {
        if problems.isEmpty { return .compatible }
        return problems.contains { $0.status == .fail && !$0.fixable } ? .notCompatible : .compatibleWithChanges
    }

    /// Why, in one sentence.
    public var summary: String {
        let worst = problems.filter { !$0.fixable && $0.status == .fail } + problems.filter { $0.fixable || $0.status != .fail }
        guard !worst.isEmpty else { return "\(verdict.text): every check passed" }
        let reasons = worst.prefix(3).map { "\($0.title.lowercased()) (\($0.status.rawValue))" }
        return "\(verdict.text): " + reasons.joined(separator: "; ") + (worst.count > 3 ? "; and \(worst.count - 3) more" : "")
    }

    /// 0 all good, 1 something needs attention.
    public var exitStatus: Int32 { problems.isEmpty ? 0 : 1 }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "verdict": .string(verdict.rawValue), "summary": .string(summary), "device": .string(device),
            "release": .string(PosminiProtocol.release), "checks": .array(checks.map(\.json)),
        ]
        if !fixed.isEmpty { fields["fixed"] = .array(fixed.map { .string($0) }) }
        return .object(fields)
    }

    /// The report for a terminal: one line per check, advice under anything not PASS.
    public var text: String {
        var lines = ["posminid diagnose: \(device)"]
        let width = min(28, checks.map(\.title.count).max() ?? 0)
        for check in checks {
            let title = check.title.count < width ? check.title + String(repeating: " ", count: width - check.title.count) : check.title
            lines.append("\(check.status.rawValue.padding(4))  \(title)  \(check.valueText)")
            if let advice = check.advice, check.status == .warn || check.status == .fail {
                lines.append("      → \(advice)")
            }
        }
        if !fixed.isEmpty { lines.append("changed by --fix: " + fixed.joined(separator: "; ")) }
        lines.append("Result: \(summary)")
        return lines.joined(separator: "\n")
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
