#if canImport(Glibc)
public import Glibc
#elseif canImport(Musl)
public import Musl
#endif

/// A `sockaddr_un` for `path` and its length; nil when the path does not fit. With
/// `abstractAt`, a leading `@` names the abstract namespace (as in `$NOTIFY_SOCKET`).
public func unixSocketAddress(_ path: String, abstractAt: Bool = false) -> (sockaddr_un, socklen_t)? {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    var bytes = Array(path.utf8)
    if abstractAt && bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
    return (address, socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count))
}
