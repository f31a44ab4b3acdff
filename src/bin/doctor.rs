//! `mcp-access-gateway doctor <MCP URL>`: the native command that replays a strict MCP
//! client against a deployment (the steps and verdicts are in the library's `doctor`
//! module; this file only does the HTTP, the browser and the loopback callback).

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use mcp_access_gateway::doctor::{self, Answer, Io, Line, Options, OriginProbe, Request, ToolCall};
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::process::{Command, ExitCode};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    const USAGE: &str = "usage: mcp-access-gateway doctor <MCP URL> [--login] [--call TOOL [--arguments JSON]]
       [--origin ORIGIN_MCP_URL | --private-origin ORIGIN_MCP_URL] [--access-issuer ACCESS_ISSUER]
       [--json] [--browser-command COMMAND] [--login-timeout SECONDS]

Replays what a strict MCP client does and prints one line per step: ✓, ✗ or ⚠, what
it saw, and the fix. --login also logs in through your browser (COMMAND, or
$MCP_DOCTOR_BROWSER, is run with the URL as its last argument instead of the system
browser). --origin: the origin's public URL, which must refuse a request without
credentials; --private-origin: the gateway reaches the origin through its ORIGIN_SERVICE
binding (Workers VPC), and this URL must not answer from here at all. The exit status
is 1 if a step failed.";

    struct Arguments {
        options: Options,
        json: bool,
        browser: Option<String>,
        login_timeout: Duration,
    }

    fn parse(mut args: impl Iterator<Item = String>, listener_port: u16) -> Result<Arguments, String> {
        if args.next().as_deref() != Some("doctor") {
            return Err("the only command is doctor".into());
        }
        let (mut url, mut json, mut login, mut origin, mut access_issuer) = (None, false, false, None, None);
        let (mut tool, mut arguments, mut browser, mut timeout) = (None, None, None, 300);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--json" => json = true,
                "--login" => login = true,
                "--origin" | "--private-origin" if origin.is_some() => {
                    return Err("give one of --origin and --private-origin".into())
                }
                "--origin" => origin = Some(OriginProbe::Public(value()?)),
                "--private-origin" => origin = Some(OriginProbe::Private(value()?)),
                "--access-issuer" => access_issuer = Some(value()?),
                "--call" => tool = Some(value()?),
                "--arguments" => arguments = Some(value()?),
                "--browser-command" => browser = Some(value()?),
                "--login-timeout" => timeout = value()?.parse().map_err(|_| "--login-timeout needs seconds")?,
                _ if arg.starts_with('-') || url.is_some() => return Err(format!("unexpected {arg}")),
                _ => url = Some(arg),
            }
        }
        let url: String = url.ok_or("the MCP URL is missing")?;
        for given in [Some(&url), access_issuer.as_ref()].into_iter().flatten() {
            if !doctor::acceptable_url(given, false) {
                return Err(format!("{given} is not an https URL (http only on loopback)"));
            }
        }
        match &origin {
            Some(OriginProbe::Public(given)) if !doctor::acceptable_url(given, false) => {
                return Err(format!("{given} is not an https URL (http only on loopback)"))
            }
            Some(OriginProbe::Private(given)) if !doctor::acceptable_url(given, true) => {
                return Err(format!("{given} is not an http or https URL"))
            }
            _ => {}
        }
        let arguments = match (arguments, &tool) {
            (Some(_), None) => return Err("--arguments is for --call TOOL".into()),
            (Some(text), Some(_)) => match serde_json::from_str(&text) {
                Ok(object @ serde_json::Value::Object(_)) => object,
                _ => return Err("--arguments must be a JSON object".into()),
            },
            (None, _) => serde_json::json!({}),
        };
        Ok(Arguments {
            options: Options {
                mcp_url: url,
                origin,
                access_issuer,
                redirect_uri: format!("http://127.0.0.1:{listener_port}/callback"),
                login,
                call: tool.map(|name| ToolCall { name, arguments }),
            },
            json,
            browser: browser.or_else(|| std::env::var("MCP_DOCTOR_BROWSER").ok()),
            login_timeout: Duration::from_secs(timeout),
        })
    }

    struct Native {
        agent: ureq::Agent,
        listener: TcpListener,
        browser: Option<String>,
        login_timeout: Duration,
        started: Instant,
        json: bool,
    }

    impl Io for Native {
        fn send(&mut self, request: &Request) -> Result<Answer, String> {
            let mut call = self.agent.request(request.method, &request.url);
            for (name, value) in &request.headers {
                call = call.set(name, value);
            }
            let response = match request.body.as_deref() {
                Some(body) => call.send_string(body),
                None => call.call(),
            };
            let response = match response {
                Ok(response) | Err(ureq::Error::Status(_, response)) => response,
                Err(error) => return Err(error.kind().to_string()),
            };
            let mut headers = Vec::new();
            for name in response.headers_names() {
                for value in response.all(&name) {
                    headers.push((name.to_ascii_lowercase(), value.to_owned()));
                }
            }
            let status = response.status();
            let body = response.into_string().map_err(|error| error.to_string())?;
            Ok(Answer { status, headers, body })
        }

        fn login(&mut self, authorize_url: &str) -> Result<String, String> {
            eprintln!("Log in in your browser; if none opened, open:\n{authorize_url}");
            let mut command = match &self.browser {
                Some(line) => {
                    let mut words = line.split_whitespace();
                    let mut command = Command::new(words.next().ok_or("the browser command is empty")?);
                    command.args(words);
                    command
                }
                None if cfg!(target_os = "macos") => Command::new("open"),
                None if cfg!(windows) => {
                    let mut command = Command::new("cmd");
                    command.args(["/c", "start", ""]);
                    command
                }
                None => Command::new("xdg-open"),
            };
            // The browser runs on its own; the callback below is what counts.
            let _browser = command.arg(authorize_url).spawn();
            let listener = self.listener.try_clone().map_err(|e| e.to_string())?;
            let (sender, receiver) = mpsc::channel();
            std::thread::spawn(move || sender.send(wait_for_callback(&listener)));
            let port = self.listener.local_addr().map_err(|e| e.to_string())?.port();
            match receiver.recv_timeout(self.login_timeout) {
                Ok(Ok(path)) => Ok(format!("http://127.0.0.1:{port}{path}")),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(format!("no callback within {} s", self.login_timeout.as_secs())),
            }
        }

        fn random(&mut self) -> String {
            use base64::Engine as _;
            let mut bytes = [0u8; 32];
            getrandom::getrandom(&mut bytes).expect("the system has no randomness");
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        }

        fn millis(&mut self) -> u64 {
            self.started.elapsed().as_millis() as u64
        }

        fn show(&mut self, line: &Line) {
            if !self.json {
                println!("{line}");
            }
        }
    }

    /// Serves the loopback redirect URI until the browser arrives at `/callback`; returns
    /// its path and query.
    fn wait_for_callback(listener: &TcpListener) -> Result<String, String> {
        loop {
            let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
            let mut request_line = String::new();
            BufReader::new(&stream).read_line(&mut request_line).map_err(|e| e.to_string())?;
            let target = request_line.split(' ').nth(1).unwrap_or_default().to_owned();
            let found = target.starts_with("/callback?");
            let (status, page) = if found {
                ("200 OK", "The login finished: you can close this window and go back to the terminal.")
            } else {
                ("404 Not Found", "Not the callback.")
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            (&stream).write_all(answer.as_bytes()).ok();
            if found {
                return Ok(target);
            }
        }
    }

    pub fn main() -> ExitCode {
        if std::env::args().any(|arg| arg == "-h" || arg == "--help") {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("cannot listen on a loopback port for the login callback: {error}");
                return ExitCode::from(2);
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let arguments = match parse(std::env::args().skip(1), port) {
            Ok(arguments) => arguments,
            Err(problem) => {
                eprintln!("{problem}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        let agent = ureq::AgentBuilder::new().redirects(0).timeout(Duration::from_secs(20)).build();
        let mut io = Native {
            agent,
            listener,
            browser: arguments.browser,
            login_timeout: arguments.login_timeout,
            started: Instant::now(),
            json: arguments.json,
        };
        let report = doctor::run(&arguments.options, &mut io);
        if arguments.json {
            println!("{}", serde_json::to_string_pretty(&report).expect("the report serialises"));
        }
        if report.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    #[cfg(test)]
    mod tests {
        use super::parse;

        #[test]
        fn the_origin_is_public_or_private() {
            use mcp_access_gateway::doctor::OriginProbe;
            let origin = |args: &[&str]| {
                let args = ["doctor", "https://mcp.example.com/mcp"].iter().chain(args).map(|a| a.to_string());
                parse(args, 4567).map(|a| a.options.origin)
            };
            assert_eq!(origin(&[]), Ok(None));
            let public = origin(&["--origin", "https://o.example/mcp"]);
            assert_eq!(public, Ok(Some(OriginProbe::Public("https://o.example/mcp".into()))));
            let private = origin(&["--private-origin", "http://mcp.internal:8000/mcp"]);
            assert_eq!(private, Ok(Some(OriginProbe::Private("http://mcp.internal:8000/mcp".into()))));
            assert!(origin(&["--origin", "http://mcp.internal/mcp"]).is_err(), "a public origin is https");
            let both = origin(&["--origin", "https://o.example/mcp", "--private-origin", "http://mcp.internal/mcp"]);
            assert_eq!(both, Err("give one of --origin and --private-origin".to_owned()));
        }

        fn parsed(args: &[&str]) -> Result<Option<serde_json::Value>, String> {
            let args = ["doctor", "https://mcp.example.com/mcp"].iter().chain(args).map(|a| a.to_string());
            parse(args, 4567).map(|a| a.options.call.map(|call| call.arguments))
        }

        #[test]
        fn tool_arguments_are_a_json_object_for_a_call() {
            assert_eq!(parsed(&["--call", "ping", "--arguments", r#"{"a":1}"#]), Ok(Some(serde_json::json!({"a": 1}))));
            assert_eq!(parsed(&["--call", "ping"]), Ok(Some(serde_json::json!({}))));
            let not_object = Err("--arguments must be a JSON object".to_owned());
            assert_eq!(parsed(&["--call", "ping", "--arguments", "1"]), not_object);
            assert_eq!(parsed(&["--call", "ping", "--arguments", "{"]), not_object);
            assert_eq!(parsed(&["--arguments", "{}"]), Err("--arguments is for --call TOOL".to_owned()));
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

// The Worker is the library; the doctor command exists natively only.
#[cfg(target_arch = "wasm32")]
fn main() {}
