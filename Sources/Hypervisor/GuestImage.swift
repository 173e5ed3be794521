import Foundation

/// A guest program the VMM can boot: an x86-64 ELF executable whose loadable segments sit between
/// 1 MiB and 1 GiB, entered in 64-bit long mode at its ELF entry point with the boot parameters'
/// address in `rdi` (see guests/guest.h). The built-in images are compiled from `guests/` by the build.
public struct GuestImage: Sendable {
    /// One loadable segment: the bytes the file holds and how much memory it spans (the rest is zero).
    public struct Segment: Sendable {
        public let guestAddress: UInt64
        public let bytes: [UInt8]
        public let memorySize: UInt64
    }

    /// The name images are selected by: `builtin:NAME`.
    public let reference: String
    public let segments: [Segment]
    public let entry: UInt64
    /// The first guest address above every segment.
    public let end: UInt64

    /// Where images may load: above the VMM's page tables and boot data, below 1 GiB.
    static let loadRange: Range<UInt64> = 0x10_0000..<0x4000_0000

    /// The least memory a VM of this image needs: its segments, rounded up to 2 MiB, plus 1 MiB of headroom.
    public var minimumMemoryBytes: Int64 {
        Int64((end + (1 << 20) + (2 << 20) - 1) & ~((2 << 20) - 1))
    }

    /// Parses and checks an ELF image; a file that is not a loadable x86-64 executable is refused.
    public init(reference: String, elf: [UInt8]) throws {
        func invalid(_ why: String) -> HypervisorError {
            HypervisorError(.invalidImage, "image '\(reference)' is not a valid guest image: \(why)")
        }
        func u16(_ at: Int) -> UInt64 { UInt64(elf[at]) | UInt64(elf[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt64 { u16(at) | u16(at + 2) << 16 }
        func u64(_ at: Int) -> UInt64 { u32(at) | u32(at + 4) << 32 }
        guard elf.count >= 64, elf[0] == 0x7f, elf[1] == 0x45, elf[2] == 0x4c, elf[3] == 0x46 else {
            throw invalid("not an ELF file")
        }
        guard elf[4] == 2, elf[5] == 1 else { throw invalid("not a 64-bit little-endian ELF file") }
        guard u16(16) == 2 else { throw invalid("not an executable (ELF type \(u16(16)))") }
        guard u16(18) == 62 else { throw invalid("not built for x86-64 (machine \(u16(18)))") }
        let entry = u64(24)
        let programHeaders = u64(32)
        let headerSize = u16(54)
        let headerCount = u16(56)
        // (Compared without adding to the offset read from the file: it may be anything.)
        guard headerSize >= 56, headerCount > 0, headerCount <= 64, programHeaders <= UInt64(elf.count),
            headerSize * headerCount <= UInt64(elf.count) - programHeaders
        else { throw invalid("program headers out of bounds") }
        var segments: [Segment] = []
        var end: UInt64 = 0
        var entryIsExecutable = false
        for i in 0..<Int(headerCount) {
            let at = Int(programHeaders) + i * Int(headerSize)
            guard u32(at) == 1 else { continue }  // PT_LOAD
            let flags = u32(at + 4)
            let offset = u64(at + 8)
            let address = u64(at + 24)
            let fileSize = u64(at + 32)
            let memorySize = u64(at + 40)
            guard fileSize <= memorySize, offset <= UInt64(elf.count), fileSize <= UInt64(elf.count) - offset else {
                throw invalid("segment \(i) lies outside the file")
            }
            guard address >= Self.loadRange.lowerBound, memorySize <= Self.loadRange.upperBound,
                address <= Self.loadRange.upperBound - memorySize
            else {
                throw invalid(
                    "segment \(i) at 0x\(String(address, radix: 16)) is outside the guest load range 1MiB-1GiB")
            }
            if flags & 1 != 0, (address..<(address + memorySize)).contains(entry) { entryIsExecutable = true }
            segments.append(
                Segment(
                    guestAddress: address, bytes: Array(elf[Int(offset)..<Int(offset + fileSize)]),
                    memorySize: memorySize))
            end = max(end, address + memorySize)
        }
        guard !segments.isEmpty else { throw invalid("no loadable segment") }
        guard entryIsExecutable else {
            throw invalid("entry point 0x\(String(entry, radix: 16)) is not in an executable segment")
        }
        self.reference = reference
        self.segments = segments
        self.entry = entry
        self.end = end
    }

    /// The images built from `guests/`, by reference (`builtin:hello`, ...).
    public static let builtins: [String: GuestImage] = {
        var images: [String: GuestImage] = [:]
        for name in BuiltGuests.base64.keys {
            let reference = "builtin:" + name
            guard let elf = builtinELF(reference), let image = try? GuestImage(reference: reference, elf: elf)
            else { continue }
            images[reference] = image
        }
        return images
    }()

    /// The ELF file of a built-in image (to boot the same guest under another VMM, as the benchmark does).
    public static func builtinELF(_ reference: String) -> [UInt8]? {
        guard reference.hasPrefix("builtin:"), let base64 = BuiltGuests.base64[String(reference.dropFirst(8))],
            let data = Data(base64Encoded: base64)
        else { return nil }
        return [UInt8](data)
    }

    /// The references of the built-in images, sorted.
    public static var builtinReferences: [String] { builtins.keys.sorted() }

    /// Finds an image by reference; an unknown reference is refused with the list of known ones.
    public static func named(_ reference: String) throws -> GuestImage {
        guard let image = builtins[reference] else {
            throw HypervisorError(
                .invalidImage,
                "unknown image '\(reference)': available images are \(builtinReferences.joined(separator: ", "))")
        }
        return image
    }
}
