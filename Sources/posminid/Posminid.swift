import ArgumentParser
import PosminiDaemon
import ReaderIO

@main
struct Posminid: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "posminid",
        abstract: "Audio-jack magnetic-stripe reader daemon.",
        subcommands: [Decode.self])

    func run() throws {
        // The daemon itself arrives with the socket and systemd work.
        StandardStreams.err("posminid: the daemon is not part of this build yet; try `posminid decode --help`.")
        throw ExitCode(2)
    }
}

struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode swipes in WAV recordings.",
        discussion: """
            Prints one result per swipe: JSON lines with --json, text otherwise. Clear track data \
            appears only with --reveal. Exit status: 0 when at least one track read, 1 when none, \
            2 when a file could not be read.
            """)

    @Flag(help: "One JSON object per swipe, one per line.")
    var json = false

    @Flag(help: "Also print clear track data (test cards only; warns on stderr).")
    var reveal = false

    @Argument(help: "WAV files (16/24/32-bit integer or 32-bit float, mono or stereo).")
    var files: [String]

    func run() throws {
        let tool = DecodeTool(json: json, reveal: reveal)
        let status = tool.run(files, out: StandardStreams.out, err: StandardStreams.err)
        if status != 0 { throw ExitCode(status) }
    }
}
