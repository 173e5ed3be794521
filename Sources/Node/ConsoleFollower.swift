import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads a VM's console file as the guest writes it, across rotations (`dwcp vm console --follow`).
///
/// The console rotates by renaming `console.log` to `console.log.1` and starting a new file. A
/// follower that read the file by its name and an offset lost what the guest wrote between its
/// last read and the rotation (about 900 bytes each time, at the counter's fastest), and skipped
/// the start of a new file that had grown past the old offset. This one keeps the file open: the
/// descriptor follows the renamed file to its end, and only then is the new file opened. The file
/// is closed when the follower goes.
final class ConsoleFollower: Sendable {
    let path: String
    private let file = Mutex(OpenFile())

    /// The open file and its identity (device, inode); descriptor -1 before the file exists.
    private struct OpenFile {
        var descriptor: Int32 = -1
        var identity: FileIdentity?
    }

    private struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
    }

    init(path: String) { self.path = path }

    deinit {
        file.withLock { if $0.descriptor >= 0 { close($0.descriptor) } }
    }

    /// What the guest wrote since the last read: the rest of the file read so far and, when the
    /// console rotated meanwhile, the new file from its start.
    func newOutput() -> Data {
        file.withLock { file in
            var data = Data()
            // (A few rounds at most: each is a rotation during this read, 1 MiB of output apart.)
            for _ in 0..<4 {
                if file.descriptor < 0 {
                    guard let opened = Self.open(path) else { break }
                    file = opened
                }
                data.append(Self.readToEnd(file.descriptor))
                guard let current = Self.identity(ofPath: path), current != file.identity else { break }
                close(file.descriptor)
                file = OpenFile()
            }
            return data
        }
    }

    private static func open(_ path: String) -> OpenFile? {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            close(descriptor)
            return nil
        }
        return OpenFile(
            descriptor: descriptor, identity: FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino)))
    }

    /// The rest of the open file (Foundation's read loop, on a descriptor this follower keeps).
    private static func readToEnd(_ descriptor: Int32) -> Data {
        (try? FileHandle(fileDescriptor: descriptor, closeOnDealloc: false).readToEnd()) ?? Data()
    }

    private static func identity(ofPath path: String) -> FileIdentity? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }
}
