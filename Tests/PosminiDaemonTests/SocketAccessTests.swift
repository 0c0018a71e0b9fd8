import Testing
@testable import PosminiDaemon
@testable import PosminiDiagnose
import PosminiConfig
import PosminiSystem
#if canImport(Glibc)
import Glibc
#endif

/// The socket file's mode and group are the kernel's gate at connect(): the daemon says at
/// start which configured admins and allowed users or groups that gate shuts out, and diagnose
/// tells a technician outside the socket's group which group to join.
@Suite("Socket access: the file's group comes first")
struct SocketAccessTests {
    func configuration(allowGroups: [String] = [], allowUsers: [String] = [], adminGroup: String? = nil) -> DaemonConfiguration {
        var c = DaemonConfiguration()
        c.allowGroups = allowGroups
        c.allowUsers = allowUsers
        c.adminGroup = adminGroup
        return c
    }

    @Test("mode 660: an allowed group, an admin group and an allowed user outside the socket's group are each named, with the group to join; the socket's own group, root and a mode others may use are not")
    func unreachableNames() {
        // Group 0 is the socket's here; "daemon" (1), "adm" (4) and "nobody" (in nogroup only) are outside it.
        let said = AccessPolicy.unreachable(configuration: configuration(allowGroups: ["daemon", "root"], allowUsers: ["nobody", "root"], adminGroup: "adm"),
                                            mode: 0o140660, group: 0)
        #expect(said.count == 3, "\(said)")
        #expect(said.contains { $0.contains("allow_group 'daemon'") && $0.contains("group 'root'") })
        #expect(said.contains { $0.contains("admin_group 'adm'") && $0.contains("group 'root'") })
        #expect(said.contains { $0.contains("allow_user 'nobody'") && $0.contains("usermod -aG root nobody") })
        #expect(!said.contains { $0.contains("'root' is not") || $0.contains("allow_group 'root'") })
        // A socket others may connect to: the daemon's own check is the gate, nothing is shut out.
        #expect(AccessPolicy.unreachable(configuration: configuration(allowGroups: ["daemon"], allowUsers: ["nobody"], adminGroup: "adm"),
                                         mode: 0o140666, group: 0).isEmpty)
        // Nothing configured beyond the socket's group: nothing to say.
        #expect(AccessPolicy.unreachable(configuration: configuration(), mode: 0o140660, group: 0).isEmpty)
    }

    @Test("diagnose outside the socket's group: the refusal names the socket's group and the usermod line; a socket it may use gives none")
    func diagnoseNamesTheGroup() async {
        await #expect(processExitsWith: .success) {
            var template = Array("/tmp/posminid-access-XXXXXX".utf8CString)
            guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { exit(2) }
            let directory = String(cString: made)
            chmod(directory, 0o755)
            let path = directory + "/posmini.sock"
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0, let (address, length) = unixSocketAddress(path) else { exit(2) }
            var a = address
            let bound = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard bound == 0, listen(fd, 4) == 0 else { exit(2) }
            // Reachable first: no refusal.
            guard DaemonAccess.refusal(socket: path, user: "me") == nil else { exit(3) }
            var info = stat()
            guard stat(path, &info) == 0 else { exit(2) }
            let group = getgrgid(info.st_gid).flatMap { $0.pointee.gr_name.map { String(cString: $0) } } ?? String(info.st_gid)
            if geteuid() == 0 {
                // Root passes any mode: become a user outside the file's group, as a technician is.
                chmod(path, 0o660)
                guard setgroups(0, nil) == 0, setgid(65534) == 0, setuid(65534) == 0 else { exit(2) }
            } else {
                chmod(path, 0o000)
            }
            guard let refusal = DaemonAccess.refusal(socket: path, user: "tech") else { exit(4) }
            let named = refusal.value.contains("group \(group)") && refusal.advice.contains("'\(group)'")
                && refusal.advice.contains("usermod -aG \(group) tech") && refusal.advice.contains("admin_group")
            exit(named ? 0 : 5)
        }
    }
}
