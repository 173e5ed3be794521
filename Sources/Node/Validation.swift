import Foundation
import Hypervisor
import Store

/// The rules every intent passes before anything is proposed: names, sizes, counts, labels, images.
public enum Validation {
    /// Whether `host` (as `--api` or `--listen` give it) names every address of the machine, not
    /// one another machine could reach it at.
    static func isWildcardHost(_ host: String) -> Bool {
        ["0.0.0.0", "::", "[::]", "::0", "0:0:0:0:0:0:0:0", ""].contains(host)
    }

    /// Images a VM may name: the guests built from `guests/` into this binary.
    public static var builtinImages: [String] { GuestImage.builtinReferences }
    public static let defaultImage = "builtin:hello"
    /// A VM's vCPUs: what a microVM can have (one with more could be placed but never start).
    public static let cpuRange = 1...MicroVM.maxVCPUs
    /// VM memory is a whole number of 4 KiB pages, from 1 MiB to 1 TiB.
    public static let vmMemoryRange: ClosedRange<Int64> = (1 << 20)...(1 << 40)
    public static let hostCPURange = 1...65_536
    public static let hostMemoryRange: ClosedRange<Int64> = (1 << 20)...(1 << 50)

    /// A DNS label: 1–63 characters of lowercase letters, digits and '-', not starting or ending with '-'.
    public static func name(_ value: String, what: String) throws {
        let bytes = Array(value.utf8)
        let allowed = bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
        guard !bytes.isEmpty, bytes.count <= 63, allowed, bytes.first != 45, bytes.last != 45 else {
            throw NodeError(
                .invalid,
                "invalid \(what) name '\(shown(value))': use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            )
        }
    }

    /// A value as an error quotes it: cut after `limit` characters (a refusal does not echo a 10 KB
    /// name).
    static func shown(_ value: String, upTo limit: Int = 80) -> String {
        value.count > limit ? value.prefix(limit) + "… (\(value.utf8.count) bytes)" : value
    }

    /// A member's replication address: HOST:PORT, the host a name, an IPv4 address or a bracketed
    /// IPv6 one (letters, digits, '.', '-', ':' inside brackets), at most 255 bytes (it travels in
    /// frames whose strings are at most that long, and in membership entries, one member a line).
    public static func memberAddress(_ value: String) throws {
        guard value.utf8.count <= 255, let (_, port) = hostAndPort(value), port >= 1 else {
            throw NodeError(.invalid, "invalid member address '\(shown(value))': use HOST:PORT, like 10.0.0.2:7100")
        }
    }

    /// `HOST:PORT` split, the host without an IPv6 address's brackets; nil unless the host is a
    /// name or address (letters, digits, '.', '-'; or an IPv6 address in brackets) and the port
    /// 0-65535. The CLI's addresses and members' replication addresses both pass here.
    public static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65_535).contains(port)
        else { return nil }
        let host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") {
            let inner = host.dropFirst().dropLast()
            let isIPv6 =
                !inner.isEmpty
                && inner.utf8.allSatisfy {
                    ($0 >= 48 && $0 <= 58) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) || $0 == 46
                }
            return isIPv6 ? (String(inner), port) : nil
        }
        let isName =
            !host.isEmpty
            && host.utf8.allSatisfy {
                ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 46 || $0 == 45
            }
        return isName ? (String(host), port) : nil
    }

    public static func cpus(_ value: Int, range: ClosedRange<Int> = cpuRange) throws {
        guard range.contains(value) else {
            throw NodeError(.invalid, "invalid CPU count \(value): must be \(range.lowerBound)-\(range.upperBound)")
        }
    }

    public static func vmMemory(_ bytes: Int64) throws {
        guard vmMemoryRange.contains(bytes) else {
            throw NodeError(.invalid, "invalid memory \(bytes) bytes: a VM has 1MiB to 1TiB")
        }
        guard bytes % 4096 == 0 else {
            throw NodeError(.invalid, "invalid memory \(bytes) bytes: must be a multiple of 4KiB (a page)")
        }
    }

    public static func hostMemory(_ bytes: Int64) throws {
        guard hostMemoryRange.contains(bytes) else {
            throw NodeError(.invalid, "invalid memory \(bytes) bytes: a host has 1MiB to 1PiB")
        }
    }

    /// The image must exist and be a valid guest image, and the VM's memory must hold it.
    public static func image(_ image: String, memoryBytes: Int64? = nil) throws {
        let guest: GuestImage
        do {
            guest = try GuestImage.named(image)
        } catch let error as HypervisorError {
            throw NodeError(.invalid, error.message)
        }
        if let memoryBytes, memoryBytes < guest.minimumMemoryBytes {
            throw NodeError(
                .invalid,
                "image \(image) needs at least \(ByteSize.exactText(Int64(guest.minimumMemoryBytes))) of memory; the VM has \(ByteSize.exactText(memoryBytes))"
            )
        }
    }

    /// At most this many labels (or required labels) on one host or VM.
    public static let maxLabels = 64
    /// The most bytes of log records one batch of VMs may write (each VM's labels are copied into
    /// its record): a request of 1 MiB must not become a gigabyte of log on every member.
    public static let maxBatchBytes = 4 << 20

    /// Label keys: 1–63 characters of letters, digits, '-', '_', '.', '/'; values up to 253 bytes
    /// (UTF-8) of printable text; at most ``maxLabels`` of them.
    public static func labels(_ labels: [String: String]) throws {
        guard labels.count <= maxLabels else {
            throw NodeError(.invalid, "too many labels: \(labels.count), at most \(maxLabels)")
        }
        for (key, value) in labels {
            let keyOK =
                !key.isEmpty && key.utf8.count <= 63
                && key.unicodeScalars.allSatisfy {
                    $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_./".unicodeScalars.contains($0))
                }
            guard keyOK else {
                throw NodeError(
                    .invalid, "invalid label key '\(shown(key))': use 1-63 letters, digits, '-', '_', '.', '/'")
            }
            guard value.utf8.count <= 253, !hasControlCharacters(value) else {
                throw NodeError(
                    .invalid, "invalid value for label '\(shown(key))': up to 253 bytes (UTF-8) of printable text")
            }
        }
    }

    /// How many VMs one request may create (`--count`).
    public static let batchCountRange = 1...1000

    /// The names of the VMs a request creates: `name` alone, or NAME-1 … NAME-N for a count.
    public static func vmNames(_ name: String, count: Int?) -> [String] {
        guard let count else { return [name] }
        return (1...max(count, 1)).map { "\(name)-\($0)" }
    }

    /// A VM's `guest.KEY` labels become `KEY=VALUE` on the guest's command line, which the guest
    /// splits at spaces: a value with one would set other keys (`guest.note=hi interval_ms=3000`
    /// set `interval_ms`). `guest.` alone names no key; and the line must fit the guest's boot
    /// parameters (``MicroVM/maxCommandLineBytes``): it was cut there, and a value cut short is
    /// another value.
    public static func guestLabels(_ labels: [String: String]) throws {
        if labels.keys.contains(HostedVM.guestLabelPrefix) {
            throw NodeError(
                .invalid,
                "invalid label '\(HostedVM.guestLabelPrefix)': a guest.* label names a key of the guest's command line after 'guest.' (guest.KEY=VALUE)"
            )
        }
        let line = HostedVM.guestCommandLine(labels)
        if line.utf8.count > MicroVM.maxCommandLineBytes {
            throw NodeError(
                .invalid,
                "the guest.* labels make a command line of \(line.utf8.count) bytes (KEY=VALUE for each, spaces between); a guest takes at most \(MicroVM.maxCommandLineBytes)"
            )
        }
        for (key, value) in labels.sorted(by: { $0.key < $1.key })
        where key.hasPrefix(HostedVM.guestLabelPrefix) && value.contains(where: \.isWhitespace) {
            throw NodeError(
                .invalid,
                "invalid value for label '\(shown(key))': a guest.* label becomes \(key.dropFirst(HostedVM.guestLabelPrefix.count))=VALUE on the guest's command line, which splits at spaces; give a value without spaces"
            )
        }
    }

    /// A log index a request names (`check_index`, `from_index`, `log_index`): views keep indexes
    /// as SQLite integers, so a larger one is no index this log will reach.
    public static func logIndex(_ value: UInt64, field: String) throws {
        guard value <= LogEntry.largestPosition else {
            throw NodeError(.invalid, "invalid \(field) \(value): a log index is at most \(Int64.max)")
        }
    }

    /// A request id: 1–128 bytes of UTF-8 without control characters. Bounded in bytes, not
    /// characters: one character may hold any number of combining marks, and the id is copied
    /// into the intent's record and row.
    public static func requestID(_ value: String) throws {
        guard !value.isEmpty, value.utf8.count <= 128, !hasControlCharacters(value) else {
            throw NodeError(.invalid, "invalid request id: 1-128 bytes (UTF-8) without control characters")
        }
    }

    /// Whether `text` holds a control character (a line break, a NUL, an escape): label values and
    /// request ids refuse them.
    static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// Parses `k=v` label arguments.
    public static func parseLabels(_ pairs: [String]) throws -> [String: String] {
        var labels: [String: String] = [:]
        for pair in pairs {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw NodeError(.invalid, "invalid label '\(pair)': use key=value")
            }
            let key = String(pair[..<eq])
            guard labels[key] == nil else { throw NodeError(.invalid, "label '\(key)' is given twice") }
            labels[key] = String(pair[pair.index(after: eq)...])
        }
        try self.labels(labels)
        return labels
    }
}
