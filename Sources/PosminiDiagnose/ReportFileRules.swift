import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// Where `--diagnose` may write its report and plot: directories of the caller's own, checked
/// with fstat on descriptors opened without following a symbolic link.
enum ReportFileRules {
    /// Who runs diagnose: the effective user; under sudo also the user who typed the command
    /// (`SUDO_UID`), whose own directory `sudo posminid --diagnose --report ~/ticket` names.
    static var reportOwners: Set<UInt32> {
        var owners: Set<UInt32> = [FileBytes.effectiveUserID]
        if FileBytes.effectiveUserID == 0, let sudo = getenv("SUDO_UID").flatMap({ UInt32(String(cString: $0)) }) {
            owners.insert(sudo)
        }
        return owners
    }

    /// The `--report` directory, made (mode 700) when missing. One that exists must belong to
    /// the caller and be writable by nobody else: in someone else's directory (a /tmp/ticket
    /// another user made) that user could read the bundle or swap its files.
    static func reportDirectory(_ path: String) throws(DiagnoseTool.NotRun) -> Directory {
        do {
            return try Directory.openOrCreatePrivate(path, owners: reportOwners)
        } catch {
            switch error {
            case .cannotOpen(let failure):
                throw DiagnoseTool.NotRun(message: "cannot write the report to \(path): \(failure)")
            case .notPrivate(let status):
                throw DiagnoseTool.NotRun(message: """
                    refusing to write the report into \(path): it is owned by \(FileBytes.describeUser(status.owner)) with mode \
                    \(status.modeText)\(status.writableByOthers ? " (writable by others)" : ""), so someone else could read or \
                    replace the files; name a directory of your own that only you can write, or one that does not exist yet \
                    (it is created with mode 700)
                    """)
            }
        }
    }

    /// The directory `--plot FILE` goes into, under the `--report` rule: it must belong to the
    /// caller and be writable by nobody else (in a directory others can write, such as /tmp,
    /// they could replace or read the picture). Returns it and the file's name.
    static func plotDirectory(_ path: String) throws(DiagnoseTool.NotRun) -> (Directory, String) {
        let directory: Directory, name: String, status: FileStatus
        do {
            (directory, name) = try Directory.opening(containing: path)
            status = try directory.status()
        } catch {
            throw DiagnoseTool.NotRun(message: "cannot write the plot to \(path): \(error)")
        }
        guard status.isPrivate(to: reportOwners) else {
            throw DiagnoseTool.NotRun(message: """
                refusing to write the plot into \(directory.path): it is owned by \(FileBytes.describeUser(status.owner)) with mode \
                \(status.modeText)\(status.writableByOthers ? " (writable by others)" : ""), so someone else could read or \
                replace the picture; name a file in a directory of your own that only you can write
                """)
        }
        return (directory, name)
    }

}
