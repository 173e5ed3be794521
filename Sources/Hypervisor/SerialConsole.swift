import Foundation
import Synchronization

/// What a VM wrote to its serial port (COM1), kept in a file of bounded size: when `console.log`
/// reaches the limit it becomes `console.log.1` (replacing the previous one) and a new file starts,
/// so at most twice the limit is kept and the newest output is never dropped.
public final class SerialConsole: Sendable {
    public let path: String
    public let limitBytes: Int
    private struct State {
        var handle: FileHandle?
        var size: Int
        var buffer: [UInt8] = []
    }
    private let state: Mutex<State>

    public init(path: String, limitBytes: Int = 1 << 20) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw HypervisorError(.system, "cannot open console file \(path)")
        }
        let size = Int(try handle.seekToEnd())
        self.path = path
        self.limitBytes = limitBytes
        state = Mutex(State(handle: handle, size: size))
    }

    /// Takes one byte from the guest; output is written out at each newline or every 4 KiB.
    func append(_ byte: UInt8) {
        state.withLock { s in
            s.buffer.append(byte)
            if byte == 10 || s.buffer.count >= 4096 { flush(&s) }
        }
    }

    /// Writes out what is buffered.
    public func flush() {
        state.withLock { flush(&$0) }
    }

    /// Flushes and closes the file; later output is dropped.
    public func close() {
        state.withLock { s in
            flush(&s)
            try? s.handle?.close()
            s.handle = nil
        }
    }

    private func flush(_ s: inout State) {
        guard !s.buffer.isEmpty, let handle = s.handle else { return }
        if s.size + s.buffer.count > limitBytes, s.size > 0 {
            try? handle.close()
            let previous = path + ".1"
            try? FileManager.default.removeItem(atPath: previous)
            try? FileManager.default.moveItem(atPath: path, toPath: previous)
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            s.handle = FileHandle(forWritingAtPath: path)
            s.size = 0
        }
        try? s.handle?.write(contentsOf: s.buffer)
        s.size += s.buffer.count
        s.buffer.removeAll(keepingCapacity: true)
    }

    /// Everything kept for the console at `path`: the rotated file, then the current one.
    public static func read(path: String) -> Data {
        var data = FileManager.default.contents(atPath: path + ".1") ?? Data()
        data.append(FileManager.default.contents(atPath: path) ?? Data())
        return data
    }
}
