import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// Who may own the directories and files posminid trusts, and the messages when they are not
/// so. The checks are fstat on descriptors opened without following a symbolic link.
enum FileRules {
    /// The daemon's own user and root: nobody else may own its state or its key.
    static var daemonOwners: Set<UInt32> { [FileBytes.effectiveUserID, 0] }

    /// The state directory (created with mode 700 when missing): refused unless owned by the
    /// daemon's user or root and writable by nobody else, since whoever can write it can plant
    /// links in place of the counter and the bindings.
    static func stateDirectory(_ path: String) throws(KeyStoreError) -> Directory {
        let directory: Directory
        let status: FileStatus
        do {
            directory = try Directory.openOrCreate(path, mode: 0o700).directory
            status = try directory.status()
        } catch {
            throw KeyStoreError("state directory \(error)")
        }
        guard status.isPrivate(to: daemonOwners) else {
            throw KeyStoreError("""
                state directory \(path) is owned by \(FileBytes.describeUser(status.owner)) with mode \(status.modeText): \
                refusing it, since \(status.writableByOthers ? "others can write to it" : "another user owns it") and could \
                replace the transaction counter or the bindings; it must belong to the user posminid runs as \
                (\(FileBytes.describeUser(FileBytes.effectiveUserID))) or root and be writable by its owner only \
                (chown \(FileBytes.userName(FileBytes.effectiveUserID) ?? String(FileBytes.effectiveUserID)) \(path); chmod 700 \(path))
                """)
        }
        return directory
    }

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
        let directory: Directory
        let status: FileStatus
        do {
            directory = try Directory.openOrCreate(path, mode: 0o700).directory
            status = try directory.status()
        } catch {
            throw DiagnoseTool.NotRun(message: "cannot write the report to \(path): \(error)")
        }
        guard status.isPrivate(to: reportOwners) else {
            throw DiagnoseTool.NotRun(message: """
                refusing to write the report into \(path): it is owned by \(FileBytes.describeUser(status.owner)) with mode \
                \(status.modeText)\(status.writableByOthers ? " (writable by others)" : ""), so someone else could read or \
                replace the files; name a directory of your own that only you can write, or one that does not exist yet \
                (it is created with mode 700)
                """)
        }
        return directory
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

    /// Gives the socket at `path` to group `gid` through its directory's descriptor, not
    /// following a symbolic link put in the socket's place.
    static func setSocketGroup(_ path: String, to gid: UInt32) throws(FileError) {
        let (directory, name) = try Directory.opening(containing: path, namesOnly: true)
        try directory.setGroup(of: name, to: gid)
    }
}
