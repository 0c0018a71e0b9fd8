public import Logging
import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// Log lines to stderr: with a syslog priority prefix (`<3>` … `<7>`) when stderr goes to the
/// journal (`$JOURNAL_STREAM` set), so that journald keeps each line's level; plain otherwise.
/// Card data never reaches a logger: the daemon logs reader names, counts and reasons only.
public struct StderrLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let label: String
    let journal: Bool

    public init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
        journal = getenv("JOURNAL_STREAM") != nil
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = journal ? "<\(StderrLogHandler.priority(event.level))>" : "\(event.level.rawValue.uppercased()): "
        line += "\(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if !merged.isEmpty {
            line += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        StandardStreams.err(line)
    }

    /// syslog priorities: 3 error, 4 warning, 5 notice, 6 info, 7 debug.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: 2
        case .error: 3
        case .warning: 4
        case .notice: 5
        case .info: 6
        case .debug, .trace: 7
        }
    }
}

extension Logger.Level {
    init?(configured text: String) {
        self.init(rawValue: text)
    }
}
