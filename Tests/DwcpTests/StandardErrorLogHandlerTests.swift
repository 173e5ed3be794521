import Logging
import Synchronization
import Testing

@testable import dwcp

/// A text stream that keeps what is written to it, for a handler to write into.
struct CapturedText: TextOutputStream, Sendable {
    final class Buffer: Sendable {
        let text = Mutex("")
    }
    let buffer = Buffer()
    var text: String { buffer.text.withLock { $0 } }
    mutating func write(_ string: String) { buffer.text.withLock { $0 += string } }
}

@Suite struct StandardErrorLogHandlerTests {
    @Test func metadataSetOnALoggerIsWrittenWithItsLinesAndExplicitMetadataWins() {
        let captured = CapturedText()
        var logger = Logger(label: "dwcp") { label in
            StandardErrorLogHandler(wrapping: StreamLogHandler(label: label, stream: captured), level: .info)
        }
        logger[metadataKey: "request"] = "r1"
        #expect(logger[metadataKey: "request"] == "r1")
        logger.debug("below the level")
        #expect(captured.text.isEmpty)
        logger.info("first")
        #expect(captured.text.contains("request=r1"))
        #expect(captured.text.contains("first"))
        logger.info("second", metadata: ["request": "r2", "extra": "x"])
        let second = captured.text.split(separator: "\n").last.map(String.init) ?? ""
        #expect(second.contains("second") && second.contains("request=r2") && second.contains("extra=x"))
        #expect(!second.contains("request=r1"))
        // A copy of the logger with more metadata leaves the original's alone.
        var copy = logger
        copy[metadataKey: "copy"] = "yes"
        logger.info("third")
        let third = captured.text.split(separator: "\n").last.map(String.init) ?? ""
        #expect(third.contains("request=r1") && !third.contains("copy=yes"))
        copy.info("fourth")
        let fourth = captured.text.split(separator: "\n").last.map(String.init) ?? ""
        #expect(fourth.contains("request=r1") && fourth.contains("copy=yes"))
    }
}
