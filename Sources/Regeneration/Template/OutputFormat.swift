import Foundation
import Mustache
import Orchestration

#if canImport(FoundationXML)
import FoundationXML
#endif

/// What an artifact is written as: decides how `{{value}}` escapes what it inserts and how
/// the rendered file is validated before it is deployed.
public enum OutputFormat: String, Sendable, Codable, Hashable, CaseIterable {
    /// `{{value}}` is escaped for the inside of a JSON string; the file must parse as JSON.
    case json
    /// `{{value}}` is escaped for HTML text and attribute values.
    case html
    /// `{{value}}` is escaped for XML text and attribute values; the file must be
    /// well-formed XML 1.0 (which cannot carry most control characters at all).
    case xml
    /// `{{value}}` is inserted as it is.
    case text

    /// The format an output path's extension implies: `.json`; `.html`, `.htm`, `.xhtml`;
    /// `.xml`, `.svg`, `.rss`, `.atom`; `.txt`, `.text`, `.md`. Nil for any other.
    public static func implied(byPath path: String) -> OutputFormat? {
        switch (path as NSString).pathExtension.lowercased() {
        case "json": .json
        case "html", "htm", "xhtml": .html
        case "xml", "svg", "rss", "atom": .xml
        case "txt", "text", "md": .text
        default: nil
        }
    }

    /// The name of its swift-mustache content type (`{{% CONTENT_TYPE: NAME}}`).
    var contentTypeName: String {
        Self.registerContentTypes
        return switch self {
        case .json: "JSON"
        case .html: "HTML"
        case .xml: "XML"
        case .text: "TEXT"
        }
    }

    /// `template` with this format's content type set before its first token.
    func template(_ text: String) throws -> MustacheTemplate {
        try MustacheTemplate(string: "{{% CONTENT_TYPE: \(contentTypeName)}}" + text)
    }

    /// Registers the JSON and XML content types with swift-mustache (HTML and TEXT are its own), once.
    private static let registerContentTypes: Void = {
        MustacheContentTypes.register(JSONStringContent(), named: "JSON")
        MustacheContentTypes.register(XMLContent(), named: "XML")
    }()

    /// Why `content`, rendered for an artifact of this format, must not be deployed; nil when it may.
    func problem(with content: String) -> String? {
        if content.allSatisfy(\.isWhitespace) { return "rendered empty" }
        switch self {
        case .json:
            let bytes = Array(content.utf8)
            guard (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) == nil else { return nil }
            return "not valid JSON" + (JSONSyntaxProblem.find(in: bytes).map { ": \($0)" } ?? "")
        case .xml:
            return Self.xmlProblem(in: content)
        case .html, .text:
            return nil
        }
    }

    private static func xmlProblem(in content: String) -> String? {
        let parser = XMLParser(data: Data(content.utf8))
        guard !parser.parse() else { return nil }
        let code = (parser.parserError as NSError?)?.code ?? -1
        return "not well-formed XML at line \(parser.lineNumber), column \(parser.columnNumber) (libxml2 error \(code))"
    }
}

/// Escapes for the inside of a JSON string: quote, backslash, every control character
/// below U+0020, and U+2028/U+2029 (which JavaScript does not allow raw in a string).
struct JSONStringContent: MustacheContentType {
    func escapeText(_ text: String) -> String {
        text.escapingScalars { scalar in
            switch scalar {
            case "\"": "\\\""
            case "\\": "\\\\"
            case "\n": "\\n"
            case "\r": "\\r"
            case "\t": "\\t"
            case "\u{08}": "\\b"
            case "\u{0C}": "\\f"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029: String(format: "\\u%04x", scalar.value)
            default: nil
            }
        }
    }
}

/// Escapes the five XML specials, and tab, LF and CR as references (so attribute values
/// keep them: a parser turns raw ones into spaces). Characters XML 1.0 cannot carry in any
/// form (control characters other than tab, LF and CR; U+FFFE, U+FFFF) become character
/// references, which no XML parser accepts: the file fails validation, and the template
/// processor blames the event that brought them instead of writing a broken file.
struct XMLContent: MustacheContentType {
    func escapeText(_ text: String) -> String {
        text.escapingScalars { scalar in
            switch scalar {
            case "&": "&amp;"
            case "<": "&lt;"
            case ">": "&gt;"
            case "\"": "&quot;"
            case "'": "&apos;"
            case _ where scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF:
                "&#x\(String(scalar.value, radix: 16, uppercase: true));"
            default: nil
            }
        }
    }
}

extension String {
    /// The string with each Unicode scalar that `replacement` maps replaced by its result.
    func escapingScalars(_ replacement: (Unicode.Scalar) -> String?) -> String {
        var escaped = ""
        escaped.unicodeScalars.reserveCapacity(unicodeScalars.count)
        for scalar in unicodeScalars {
            if let replaced = replacement(scalar) { escaped += replaced } else { escaped.unicodeScalars.append(scalar) }
        }
        return escaped
    }
}
