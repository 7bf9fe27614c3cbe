import ServiceCore
import Testing

/// Addresses in a job's error (shown by the status API and the admin UI) never carry a signature,
/// a presigned storage credential or a password.
@Suite("Redacted addresses")
struct RedactedURLTests {
    @Test func queriesFragmentsAndPasswordsNeverShow() {
        #expect(redactedURL("http://127.0.0.1:8080/media/ab/file?v=cd.png&expires=1&signature=feed") == "http://127.0.0.1:8080/media/ab/file?…")
        #expect(redactedURL("https://bucket.s3.amazonaws.com/out/1.png?X-Amz-Signature=abc&X-Amz-Credential=k") == "https://bucket.s3.amazonaws.com/out/1.png?…")
        #expect(redactedURL("https://user:secret@host.example/a.png#part") == "https://host.example/a.png")
        #expect(redactedURL("https://host.example/plain.png") == "https://host.example/plain.png")
        #expect(redactedURL("not a url?token=abc") == "not a url?…")
        #expect(redactedURL("http://user:secret@host with space/a.png?x=1") == "http://host with space/a.png?…", "unparsed, still no password")
        #expect(redactedURL("https://host.example/" + String(repeating: "a", count: 400)).count == 200)
    }
}
