import PosminiProtocol
import ArgumentParser
import PosminiDaemon
import ReaderIO

@main
struct Posminictl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "posminictl",
        abstract: "Talk to posminid: status, watch the readers, arm one for a card.",
        version: PosminiProtocol.release,
        subcommands: [Status.self, Watch.self, Arm.self])
}

struct Connection: ParsableArguments {
    @Option(help: "The daemon's socket.")
    var socket = "/run/posmini.sock"

    @Flag(help: "Print the daemon's messages as they are (JSON lines).")
    var json = false

    func open() throws -> ControlClient {
        do {
            let client = try ControlClient(path: socket)
            // The greeting: VERSION and READERS.
            for _ in 0..<2 {
                guard let greeting = try client.next(timeout: 5) else { throw ValidationError("the daemon closed the connection") }
                if greeting["class"] == "ERROR" { throw ValidationError(describeMessage(greeting)) }
            }
            return client
        } catch let failure as ControlClient.Failure {
            throw ValidationError(failure.description)
        }
    }

    func show(_ message: JSONValue) { StandardStreams.out(json ? message.text : describeMessage(message)) }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Readers, armed state and counters.")
    @OptionGroup var connection: Connection

    func run() throws {
        let client = try connection.open()
        try client.send(["cmd": "status"])
        guard let reply = try client.next(timeout: 5) else { throw ExitCode(1) }
        if connection.json || reply["class"] != "STATUS" {
            connection.show(reply)
            if reply["class"] == "ERROR" { throw ExitCode(1) }
            return
        }
        for reader in reply["readers"]?.arrayValue ?? [] { StandardStreams.out(describeMessage(reader)) }
        if (reply["readers"]?.arrayValue ?? []).isEmpty { StandardStreams.out("no readers") }
        let c = reply["counters"]
        StandardStreams.out("armed: \(Int(reply["armed"]?.numberValue ?? 0)), clients: \(Int(reply["clients"]?.numberValue ?? 0)), "
            + "swipes: \(Int(c?["swipes"]?.numberValue ?? 0)) (\(Int(c?["good_reads"]?.numberValue ?? 0)) read), "
            + "xruns: \(Int(c?["xruns"]?.numberValue ?? 0)), up \(Int(reply["uptime_s"]?.numberValue ?? 0)) s")
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print reader and swipe events as they happen (no card data).")
    @OptionGroup var connection: Connection

    func run() throws {
        let client = try connection.open()
        try client.send(["cmd": "watch", "enable": true])
        while let message = try client.next() { connection.show(message) }
    }
}

struct Arm: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Arm a reader and wait for the card (masked) or the failure.")
    @OptionGroup var connection: Connection

    @Option(help: "Seconds to wait (at most 120).")
    var timeout: Double = 120

    @Option(help: "The reader's id (needed when several are present).")
    var reader: String?

    @Option(help: "A reference echoed in the replies (an order number).")
    var reference: String?

    func run() throws {
        let client = try connection.open()
        var request: [String: JSONValue] = ["cmd": "arm", "timeout_s": .number(timeout)]
        if let reader { request["reader"] = .string(reader) }
        if let reference { request["reference"] = .string(reference) }
        try client.send(.object(request))
        while let message = try client.next() {
            connection.show(message)
            switch message["class"]?.stringValue {
            case "CARD": return
            case "TIMEOUT", "CANCELLED", "READER_REMOVED", "ERROR": throw ExitCode(1)
            default: continue
            }
        }
        throw ExitCode(1)
    }
}
