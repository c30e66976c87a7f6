//! The OpenAI wire format: the two generation requests, their validation, and the error body.
//!
//! Only the fields perllm acts on are read (`model`, `prompt` or `messages`, `max_tokens` or
//! `max_completion_tokens`, `stream`); every other field a client sends (`temperature`, `top_p`,
//! ...) is accepted and passed through to the backend untouched by the gateway.

use serde::Deserialize;

/// Tokens a request asks for when it names no `max_tokens` (OpenAI's legacy completions default).
pub const DEFAULT_MAX_TOKENS: u32 = 16;

/// Bytes of text per token the gateway assumes when it counts a prompt it cannot tokenize
/// (about 4 for English text with the common BPE vocabularies); perllm's engine tokenizes with
/// the same ratio so the two agree exactly.
pub const BYTES_PER_TOKEN: usize = 4;

/// Which endpoint a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/chat/completions`.
    Chat,
}

impl Endpoint {
    /// The URL path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Completions => "/v1/completions",
            Endpoint::Chat => "/v1/chat/completions",
        }
    }
    /// Short label for metrics: `completions` or `chat`.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Completions => "completions",
            Endpoint::Chat => "chat",
        }
    }
}

/// A validated generation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenRequest {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The model asked for.
    pub model: String,
    /// The prompt text (chat: the messages as `role: content` lines).
    pub prompt: String,
    /// Tokens to generate at most.
    pub max_tokens: u32,
    /// Server-sent events?
    pub stream: bool,
}

impl GenRequest {
    /// Prompt length in tokens at [`BYTES_PER_TOKEN`] (at least 1).
    pub fn prompt_tokens(&self) -> u32 {
        count_tokens(&self.prompt)
    }
}

/// Tokens of `text` at [`BYTES_PER_TOKEN`] bytes each (at least 1).
pub fn count_tokens(text: &str) -> u32 {
    (text.len().div_ceil(BYTES_PER_TOKEN).max(1)).min(u32::MAX as usize) as u32
}

/// An error in OpenAI's format: `{"error": {"message", "type", "param", "code"}}` with an HTTP
/// status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// What is wrong, for a person.
    pub message: String,
    /// OpenAI's error type (`invalid_request_error`, `rate_limit_error`, ...).
    pub kind: &'static str,
    /// The offending request field, if one.
    pub param: Option<&'static str>,
    /// A machine-readable code (`model_not_found`, `invalid_json`, ...).
    pub code: &'static str,
}

impl ApiError {
    /// A 400 `invalid_request_error`.
    pub fn invalid(param: Option<&'static str>, code: &'static str, message: String) -> ApiError {
        ApiError {
            status: 400,
            message,
            kind: "invalid_request_error",
            param,
            code,
        }
    }
    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Prompt {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    model: Option<serde_json::Value>,
    prompt: Option<serde_json::Value>,
    messages: Option<serde_json::Value>,
    max_tokens: Option<serde_json::Value>,
    max_completion_tokens: Option<serde_json::Value>,
    stream: Option<serde_json::Value>,
}

/// Parse and validate a request body. `max_tokens_limit` is the largest `max_tokens` accepted;
/// an `n` other than 1 is refused (each choice would be a separate request to schedule).
pub fn parse(
    endpoint: Endpoint,
    body: &[u8],
    max_tokens_limit: u32,
) -> Result<GenRequest, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            None,
            "invalid_json",
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid(
            None,
            "invalid_json",
            "the request body must be a JSON object".into(),
        ));
    }
    if let Some(n) = value.get("n")
        && n.as_u64() != Some(1)
    {
        return Err(ApiError::invalid(
            Some("n"),
            "unsupported_value",
            format!("only n = 1 is supported, got {n}"),
        ));
    }
    let raw: Raw = serde_json::from_value(value)
        .map_err(|e| ApiError::invalid(None, "invalid_json", format!("bad request body: {e}")))?;
    let model = match raw.model {
        Some(serde_json::Value::String(m)) if !m.is_empty() => m,
        Some(_) => {
            return Err(ApiError::invalid(
                Some("model"),
                "invalid_type",
                "`model` must be a non-empty string".into(),
            ));
        }
        None => {
            return Err(ApiError::invalid(
                Some("model"),
                "missing_required_parameter",
                "`model` is required".into(),
            ));
        }
    };
    let prompt = match endpoint {
        Endpoint::Completions => {
            let p = raw.prompt.ok_or_else(|| {
                ApiError::invalid(
                    Some("prompt"),
                    "missing_required_parameter",
                    "`prompt` is required".into(),
                )
            })?;
            match serde_json::from_value::<Prompt>(p) {
                Ok(Prompt::One(s)) => s,
                Ok(Prompt::Many(v)) if v.len() == 1 => v.into_iter().next().unwrap_or_default(),
                Ok(Prompt::Many(v)) => {
                    return Err(ApiError::invalid(
                        Some("prompt"),
                        "unsupported_value",
                        format!("one prompt per request is supported, got {}", v.len()),
                    ));
                }
                Err(_) => {
                    return Err(ApiError::invalid(
                        Some("prompt"),
                        "invalid_type",
                        "`prompt` must be a string (or a list of one string)".into(),
                    ));
                }
            }
        }
        Endpoint::Chat => {
            let m = raw.messages.ok_or_else(|| {
                ApiError::invalid(
                    Some("messages"),
                    "missing_required_parameter",
                    "`messages` is required".into(),
                )
            })?;
            let msgs: Vec<Message> = serde_json::from_value(m).map_err(|_| {
                ApiError::invalid(
                    Some("messages"),
                    "invalid_type",
                    "`messages` must be a list of {role, content} objects".into(),
                )
            })?;
            if msgs.is_empty() {
                return Err(ApiError::invalid(
                    Some("messages"),
                    "invalid_value",
                    "`messages` is empty".into(),
                ));
            }
            let mut text = String::new();
            for m in msgs {
                text.push_str(&m.role);
                text.push_str(": ");
                match m.content {
                    Some(Content::Text(t)) => text.push_str(&t),
                    Some(Content::Parts(ps)) => {
                        for p in ps {
                            text.push_str(p.text.as_deref().unwrap_or(""));
                        }
                    }
                    None => {}
                }
                text.push('\n');
            }
            text
        }
    };
    let mt = raw.max_completion_tokens.or(raw.max_tokens);
    let max_tokens = match mt {
        None | Some(serde_json::Value::Null) => DEFAULT_MAX_TOKENS.min(max_tokens_limit),
        Some(v) => match v.as_u64() {
            Some(0) => {
                return Err(ApiError::invalid(
                    Some("max_tokens"),
                    "invalid_value",
                    "`max_tokens` must be at least 1".into(),
                ));
            }
            Some(n) if n <= max_tokens_limit as u64 => n as u32,
            Some(n) => {
                return Err(ApiError::invalid(
                    Some("max_tokens"),
                    "invalid_value",
                    format!("`max_tokens` = {n} exceeds this server's limit of {max_tokens_limit}"),
                ));
            }
            None => {
                return Err(ApiError::invalid(
                    Some("max_tokens"),
                    "invalid_type",
                    format!("`max_tokens` must be a positive integer, got {v}"),
                ));
            }
        },
    };
    let stream = match raw.stream {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(v) => {
            return Err(ApiError::invalid(
                Some("stream"),
                "invalid_type",
                format!("`stream` must be true or false, got {v}"),
            ));
        }
    };
    Ok(GenRequest {
        endpoint,
        model,
        prompt,
        max_tokens,
        stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let r = parse(
            Endpoint::Completions,
            br#"{"model":"m","prompt":"hello world","max_tokens":5,"stream":true,"temperature":0}"#,
            100,
        )
        .unwrap();
        assert_eq!(r.prompt_tokens(), 3);
        assert_eq!((r.max_tokens, r.stream), (5, true));
        let c = parse(
            Endpoint::Chat,
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            100,
        )
        .unwrap();
        assert_eq!(c.prompt, "user: hi\n");
        assert_eq!(c.max_tokens, 16);
        for (body, code) in [
            (&b"{not json"[..], "invalid_json"),
            (br#"[1]"#, "invalid_json"),
            (br#"{"prompt":"x"}"#, "missing_required_parameter"),
            (
                br#"{"model":"m","prompt":"x","max_tokens":101}"#,
                "invalid_value",
            ),
            (
                br#"{"model":"m","prompt":"x","max_tokens":0}"#,
                "invalid_value",
            ),
            (
                br#"{"model":"m","prompt":"x","max_tokens":-3}"#,
                "invalid_type",
            ),
            (br#"{"model":"m","prompt":"x","n":2}"#, "unsupported_value"),
            (br#"{"model":"m","prompt":7}"#, "invalid_type"),
        ] {
            let e = parse(Endpoint::Completions, body, 100).unwrap_err();
            assert_eq!(e.code, code, "{}", String::from_utf8_lossy(body));
            assert_eq!(e.status, 400);
        }
    }
}
