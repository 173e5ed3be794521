import CKVM
import Foundation

/// A VM's memory: one host mapping registered with KVM as guest-physical memory from address 0.
/// Anonymous for a fresh VM (pages cost nothing until touched), or a private copy-on-write mapping
/// of a snapshot's memory file for a restored one (pages are read from the file when first touched).
final class GuestMemory: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let size: Int

    private init(base: UnsafeMutableRawPointer, size: Int) {
        self.base = base
        self.size = size
    }

    static func anonymous(size: Int) throws -> GuestMemory {
        guard let base = ckvm_map_anonymous(size) else { throw HypervisorError.system("mmap of \(size) bytes") }
        return GuestMemory(base: base, size: size)
    }

    /// Maps `path` privately: writes stay in this process, the file is never changed.
    static func copyOnWrite(path: String, size: Int) throws -> GuestMemory {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HypervisorError.system("open \(path)") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw HypervisorError.system("stat \(path)") }
        guard Int(info.st_size) == size else {
            throw HypervisorError(
                .invalidSnapshot, "memory file \(path) holds \(info.st_size) bytes, the snapshot says \(size)")
        }
        guard let base = ckvm_map_file_private(fd, size) else { throw HypervisorError.system("mmap of \(path)") }
        return GuestMemory(base: base, size: size)
    }

    /// Whether `base` is still mapped; only ``unmap()`` clears it.
    private(set) var mapped = true

    deinit { unmap() }

    /// Gives the memory back now, wherever the last reference goes later (``MicroVM`` does this
    /// on its release queue). Nothing may touch the memory afterwards.
    func unmap() {
        guard mapped else { return }
        munmap(base, size)
        mapped = false
    }

    /// Copies `bytes` to guest-physical `address`; the range must lie inside the memory.
    func write(_ bytes: UnsafeRawBufferPointer, at address: UInt64) {
        precondition(Int(address) + bytes.count <= size, "guest write beyond memory")
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        (base + Int(address)).copyMemory(from: source, byteCount: bytes.count)
    }

    func write<T>(_ value: T, at address: UInt64) {
        withUnsafeBytes(of: value) { write($0, at: address) }
    }

    /// How many of the memory's pages are resident in this process (touched by guest or VMM).
    func residentPages() -> Int {
        let pageCount = (size + 4095) / 4096
        var vector = [UInt8](repeating: 0, count: pageCount)
        guard mincore(base, size, &vector) == 0 else { return 0 }
        return vector.reduce(0) { $0 + Int($1 & 1) }
    }
}
