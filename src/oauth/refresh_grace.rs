//! The refresh reuse grace (`REFRESH_REUSE_GRACE_SECONDS`). Access may rotate refresh
//! tokens strictly: one it has exchanged is refused after. Clients lose answers (a cut
//! connection, a killed process) and retry with the token they still hold, and two tabs or
//! processes sharing one token refresh at once; without a grace both end in `invalid_grant`
//! and a new browser login. So for the window after a refresh token's exchange, every
//! identical refresh (the same presented token and scope) gets that exchange's answer,
//! without storing anything durable:
//!
//! - in the isolate, identical refreshes share one exchange with Access ([`Flights`]);
//! - across the isolates of a location, and after a restart, the answer is kept in the
//!   Workers Cache API for the window, named by a hash of the presented token and sealed
//!   under a key derived from it ([`GraceKey`]): only a holder of that token can find or
//!   read it, and it says nothing about who it is for;
//! - when Access refuses the token while another isolate's exchange of it won, the edge
//!   looks for that answer a few times before answering `invalid_grant`
//!   ([`awaits_winner`], [`WINNER_POLL_MS`]).
//!
//! The cache may drop an entry at any time: the window only ever gets shorter. After it,
//! Access decides again, and a rotating Access refuses the old token.

use crate::oauth::token::{Refreshing, TokenResponse};
use crate::primitives::error::{Error, ErrorCode};
use crate::primitives::seal::{Entropy, Purpose, SealingKeys};
use crate::primitives::secret::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long an exchange in the isolate may take before identical refreshes stop waiting
/// for it: Access's 10 s, the `id_token`'s keys up to 15 s, the winner's answer 5 s.
pub const FLIGHT_SECONDS: u64 = 35;
/// How long a failed exchange stays for the identical refreshes that waited for it.
const FAILURE_KEPT_SECONDS: u64 = 5;
/// How often, and how many times, the edge looks for the winner's answer after Access
/// refused a token that another isolate may just have exchanged (5 s in all).
pub const WINNER_POLL_MS: u32 = 250;
pub const WINNER_POLLS: u32 = 20;
/// The named cache the answers are kept in (not served to anyone by the CDN).
pub const CACHE_NAME: &str = "mcpgw-refresh-grace";

/// Where a refresh's answer is kept and the key it is sealed under, both derived from the
/// refresh token the client presented and the scope sent to Access. The presented token
/// is a sealed value with 192 random bits (its nonce), so SHA-256 under two labels is a
/// sound derivation here, without an HKDF dependency in the Worker.
pub struct GraceKey {
    /// Base64url: the cache entry's name and the isolate's flight key.
    id: String,
    key: SealingKeys,
}

impl std::fmt::Debug for GraceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraceKey([redacted])")
    }
}

impl GraceKey {
    /// Where a refresh's answer is shared: identical refreshes (the same token as sent, the
    /// same scope sent to Access) share one; `None` when the grace is off (`grace_seconds` 0).
    pub fn of(refreshing: &Refreshing, grace_seconds: u64) -> Option<Self> {
        (grace_seconds > 0).then(|| Self::derive(refreshing.sent.expose(), refreshing.scope.as_deref()))
    }

    fn derive(presented: &str, scope: Option<&str>) -> Self {
        let derive = |label: &[u8]| -> [u8; 32] {
            // The token is base64url and the scope has no NUL: the separators are unambiguous.
            let mut hash = Sha256::new();
            hash.update(label);
            hash.update([0]);
            hash.update(presented.as_bytes());
            if let Some(scope) = scope {
                hash.update([0]);
                hash.update(scope.as_bytes());
            }
            hash.finalize().into()
        };
        Self {
            id: URL_SAFE_NO_PAD.encode(derive(b"mcp-access-gateway/refresh-grace/name")),
            key: SealingKeys::single(&derive(b"mcp-access-gateway/refresh-grace/key")),
        }
    }

    /// The cache entry's URL on this site (`issuer`); the named cache is the site's zone's.
    pub fn cache_url(&self, issuer: &str) -> String {
        format!("{issuer}/.mcpgw/refresh-grace/{}", self.id)
    }

    /// The answer sealed for the cache, readable until its window closes.
    pub fn seal(&self, answer: &GraceAnswer, entropy: &mut dyn Entropy) -> Result<String, Error> {
        let exposed =
            GraceAnswer { exchanged_at: answer.exchanged_at, until: answer.until, response: answer.response.expose() };
        self.key.seal(Purpose::RefreshGrace, &exposed, answer.until, entropy)
    }

    /// A cache entry opened, while its window is open; anything else is no answer.
    pub fn open(&self, sealed: &str, now: u64) -> Option<GraceAnswer> {
        self.key.open(Purpose::RefreshGrace, sealed, now).ok()
    }
}

/// A refresh's answer, shared by the identical refreshes of its window. `S` as in
/// [`TokenResponse`]: its tokens are exposed only as it is sealed for the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraceAnswer<S = Secret> {
    #[serde(rename = "at")]
    exchanged_at: u64,
    /// When the window closes.
    until: u64,
    #[serde(rename = "r")]
    response: TokenResponse<S>,
}

impl GraceAnswer {
    /// The answer of an exchange at `now`, kept for `grace_seconds`.
    pub fn new(response: TokenResponse, now: u64, grace_seconds: u64) -> Self {
        Self { response, exchanged_at: now, until: now.saturating_add(grace_seconds) }
    }

    /// The answer as a client gets it at `now`: `expires_in` counts from now.
    pub fn response(&self, now: u64) -> TokenResponse {
        self.response.aged(now.saturating_sub(self.exchanged_at))
    }

    /// How long the cache may keep it.
    pub fn cache_seconds(&self, now: u64) -> u64 {
        self.until.saturating_sub(now)
    }
}

/// Whether a failed exchange may have lost a race: Access refused the token, perhaps
/// because another isolate's exchange of it just won. Then the winner's answer is worth
/// waiting for. Access being down, or a refusal of the gateway's own, is final at once.
pub fn awaits_winner(error: &Error) -> bool {
    matches!(error, Error::OAuth { code: ErrorCode::InvalidGrant, .. })
}

/// The isolate's exchanges by [`GraceKey`]: under way, or answered within their window.
/// A list, not a map: it holds the refreshes of one window in one isolate, a handful, and a
/// map of its own would cost the Worker kilobytes of generic code.
#[derive(Debug, Default)]
pub struct Flights {
    flights: Vec<(String, Flight)>,
    tickets: u64,
}

#[derive(Debug)]
enum Flight {
    Flying { ticket: u64, since: u64 },
    Landed { ticket: u64, outcome: Result<GraceAnswer, Error>, until: u64 },
}

impl Flight {
    fn current(&self, now: u64) -> bool {
        match self {
            Self::Flying { since, .. } => now < since.saturating_add(FLIGHT_SECONDS),
            Self::Landed { until, .. } => now < *until,
        }
    }
}

/// What a refresh does in the isolate.
#[derive(Debug)]
pub enum Plan {
    /// An identical refresh was answered within the window: its answer.
    Answer(TokenResponse),
    /// Exchange it, and [`Flights::land`] the outcome under this ticket.
    Lead(u64),
    /// An identical refresh is being exchanged: wait for [`Flights::outcome`] of this ticket.
    Follow(u64),
}

impl Flights {
    fn get(&self, key: &GraceKey) -> Option<&Flight> {
        self.flights.iter().find(|(id, _)| *id == key.id).map(|(_, flight)| flight)
    }

    fn set(&mut self, key: &GraceKey, flight: Flight) {
        self.flights.retain(|(id, _)| *id != key.id);
        self.flights.push((key.id.clone(), flight));
    }

    pub fn plan(&mut self, key: &GraceKey, now: u64) -> Plan {
        self.flights.retain(|(_, flight)| flight.current(now));
        match self.get(key) {
            Some(Flight::Landed { outcome: Ok(answer), .. }) => Plan::Answer(answer.response(now)),
            Some(Flight::Flying { ticket, .. }) => Plan::Follow(*ticket),
            // None, or a failure: this request exchanges again.
            _ => {
                self.tickets += 1;
                self.set(key, Flight::Flying { ticket: self.tickets, since: now });
                Plan::Lead(self.tickets)
            }
        }
    }

    /// The outcome of the exchange `ticket` led; kept only while that exchange is still
    /// the one for its key (a later one took over once it was overdue).
    pub fn land(&mut self, key: &GraceKey, ticket: u64, outcome: Result<GraceAnswer, Error>, now: u64) {
        if !matches!(self.get(key), Some(Flight::Flying { ticket: flying, .. }) if *flying == ticket) {
            return;
        }
        let until = match &outcome {
            Ok(answer) => answer.until,
            Err(_) => now.saturating_add(FAILURE_KEPT_SECONDS),
        };
        self.set(key, Flight::Landed { ticket, outcome, until });
    }

    /// What a request following `ticket` answers, or `None` while that exchange is under
    /// way. An exchange lost (overdue, or replaced) is a failure worth retrying.
    pub fn outcome(&self, key: &GraceKey, ticket: u64, now: u64) -> Option<Result<TokenResponse, Error>> {
        match self.get(key) {
            Some(flight @ Flight::Flying { ticket: flying, .. }) if *flying == ticket && flight.current(now) => None,
            Some(Flight::Landed { outcome: Ok(answer), until, .. }) if now < *until => Some(Ok(answer.response(now))),
            Some(Flight::Landed { ticket: landed, outcome: Err(error), .. }) if *landed == ticket => {
                Some(Err(error.clone()))
            }
            _ => Some(Err(Error::unavailable("the identical refresh this request waited for was lost"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{config_from, test_config, vars};
    use crate::oauth::token::tests::{code_request, refreshed, run, sealed_refresh, token_response};
    use crate::oauth::token::UpstreamTokenRequest;
    use crate::primitives::seal::tests::CountingEntropy;

    const NOW: u64 = 1_800_000_000;
    const TOKEN: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8w";

    fn answer() -> GraceAnswer {
        GraceAnswer::new(token_response(Some(300), "rt-next"), NOW, 60)
    }

    fn wire(response: &TokenResponse) -> serde_json::Value {
        serde_json::to_value(response.expose()).unwrap()
    }

    #[test]
    fn keys_are_derived_from_the_token_and_scope_and_say_nothing() {
        let key = GraceKey::derive(TOKEN, None);
        assert_eq!(key.id, GraceKey::derive(TOKEN, None).id, "the same refresh, the same entry");
        let others = [
            GraceKey::derive(&TOKEN[1..], None),
            GraceKey::derive(&format!("{TOKEN}x"), None),
            GraceKey::derive(TOKEN, Some("openid")),
            GraceKey::derive(TOKEN, Some("")),
        ];
        for other in &others {
            assert_ne!(other.id, key.id);
        }
        assert_ne!(GraceKey::derive(TOKEN, Some("openid")).id, GraceKey::derive(TOKEN, Some("openid email")).id);
        // The name is a hash: 32 bytes, base64url, neither the token nor a part of it.
        assert_eq!(key.id.len(), 43);
        assert!(!key.id.contains(&TOKEN[..8]) && !TOKEN.contains(&key.id[..8]));
        assert_eq!(
            key.cache_url("https://mcp.example.com"),
            format!("https://mcp.example.com/.mcpgw/refresh-grace/{}", key.id)
        );
        assert_eq!(format!("{key:?}"), "GraceKey([redacted])");
    }

    #[test]
    fn a_kept_answer_opens_only_with_the_key_of_its_refresh_and_only_in_its_window() {
        let key = GraceKey::derive(TOKEN, None);
        let sealed = key.seal(&answer(), &mut CountingEntropy::default()).unwrap();
        assert!(!sealed.contains("rt-next") && !sealed.contains("access"));
        let opened = key.open(&sealed, NOW + 59).unwrap();
        assert_eq!(wire(&opened.response(NOW + 59)), wire(&answer().response(NOW + 59)));
        assert!(key.open(&sealed, NOW + 60).is_none(), "the window closed");
        for other in [GraceKey::derive(&TOKEN[1..], None), GraceKey::derive(TOKEN, Some("openid"))] {
            assert!(other.open(&sealed, NOW).is_none());
        }
        // Nor as a value the gateway's own keys open, nor the other way round.
        let config = crate::config::tests::test_config();
        assert!(config.sealing_keys.open::<GraceAnswer>(Purpose::RefreshGrace, &sealed, NOW).is_err());
        let mut flipped = sealed.into_bytes();
        flipped[40] = if flipped[40] == b'A' { b'B' } else { b'A' };
        assert!(key.open(&String::from_utf8(flipped).unwrap(), NOW).is_none());
    }

    #[test]
    fn a_shared_answer_counts_expires_in_from_when_it_is_served() {
        let answer = answer();
        assert_eq!(wire(&answer.response(NOW))["expires_in"], 300);
        assert_eq!(wire(&answer.response(NOW + 45))["expires_in"], 255);
        assert_eq!(wire(&answer.response(NOW + 400))["expires_in"], 0);
        assert_eq!(wire(&answer.response(NOW + 45))["refresh_token"], "rt-next");
        let without = GraceAnswer::new(token_response(None, "rt-next"), NOW, 60);
        assert!(wire(&without.response(NOW + 45)).get("expires_in").is_none());
        assert_eq!(
            (answer.cache_seconds(NOW), answer.cache_seconds(NOW + 59), answer.cache_seconds(NOW + 61)),
            (60, 1, 0)
        );
    }

    #[test]
    fn only_accesss_refusal_waits_for_a_winner() {
        assert!(awaits_winner(&Error::invalid_grant("the code or refresh token was rejected by Cloudflare Access")));
        assert!(!awaits_winner(&Error::unavailable("Access token endpoint answered 5xx or 429")));
        assert!(!awaits_winner(&Error::timeout("Access did not answer in time")));
        assert!(!awaits_winner(&Error::oauth(ErrorCode::InvalidClient, "x")));
    }

    #[test]
    fn identical_refreshes_share_one_exchange_in_the_isolate() {
        let (mut flights, key) = (Flights::default(), GraceKey::derive(TOKEN, None));
        let Plan::Lead(ticket) = flights.plan(&key, NOW) else { panic!("the first leads") };
        let followers: Vec<u64> = (0..9)
            .map(|_| match flights.plan(&key, NOW) {
                Plan::Follow(followed) => followed,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(followers.iter().all(|followed| *followed == ticket));
        assert!(flights.outcome(&key, ticket, NOW).is_none(), "under way");
        // Another refresh token leads its own exchange.
        let other = GraceKey::derive(&TOKEN[1..], None);
        assert!(matches!(flights.plan(&other, NOW), Plan::Lead(t) if t != ticket));
        flights.land(&key, ticket, Ok(answer()), NOW + 1);
        let shared = flights.outcome(&key, ticket, NOW + 1).unwrap().unwrap();
        assert_eq!(wire(&shared)["refresh_token"], "rt-next");
        // Later identical refreshes within the window get it too, aged; after it, one leads again.
        assert!(matches!(flights.plan(&key, NOW + 59), Plan::Answer(r) if wire(&r)["expires_in"] == 241));
        assert!(matches!(flights.plan(&key, NOW + 60), Plan::Lead(_)));
    }

    #[test]
    fn a_failed_exchange_answers_its_followers_and_the_next_refresh_leads_again() {
        let (mut flights, key) = (Flights::default(), GraceKey::derive(TOKEN, None));
        let Plan::Lead(ticket) = flights.plan(&key, NOW) else { panic!() };
        assert!(matches!(flights.plan(&key, NOW), Plan::Follow(t) if t == ticket));
        let refused = Error::invalid_grant("refused");
        flights.land(&key, ticket, Err(refused.clone()), NOW);
        assert!(matches!(flights.outcome(&key, ticket, NOW + 4), Some(Err(error)) if error == refused));
        let Plan::Lead(again) = flights.plan(&key, NOW + 1) else { panic!("a failure is not an answer") };
        assert_ne!(again, ticket);
        // The earlier followers, had they not collected theirs yet: lost, worth a retry.
        assert!(matches!(flights.outcome(&key, ticket, NOW + 1), Some(Err(Error::Upstream { .. }))));
    }

    #[test]
    fn an_overdue_exchange_is_taken_over_and_its_late_landing_ignored() {
        let (mut flights, key) = (Flights::default(), GraceKey::derive(TOKEN, None));
        let Plan::Lead(first) = flights.plan(&key, NOW) else { panic!() };
        let late = NOW + FLIGHT_SECONDS;
        assert!(flights.outcome(&key, first, late - 1).is_none());
        assert!(matches!(flights.outcome(&key, first, late), Some(Err(Error::Upstream { .. }))), "given up");
        let Plan::Lead(second) = flights.plan(&key, late) else { panic!("taken over") };
        flights.land(&key, first, Ok(answer()), late);
        assert!(flights.outcome(&key, second, late).is_none(), "the first's landing does not count");
        flights.land(&key, second, Ok(GraceAnswer::new(token_response(Some(300), "rt-second"), late, 60)), late);
        assert_eq!(wire(&flights.outcome(&key, second, late).unwrap().unwrap())["refresh_token"], "rt-second");
    }

    #[test]
    fn answers_leave_the_isolate_with_their_window() {
        let mut flights = Flights::default();
        for i in 0..50 {
            let key = GraceKey::derive(&format!("{TOKEN}{i}"), None);
            let Plan::Lead(ticket) = flights.plan(&key, NOW) else { panic!() };
            flights.land(&key, ticket, Ok(answer()), NOW);
        }
        assert_eq!(flights.flights.len(), 50);
        let _ = flights.plan(&GraceKey::derive(TOKEN, None), NOW + 60);
        assert_eq!(flights.flights.len(), 1, "only the new flight is left");
    }

    #[test]
    fn identical_refreshes_get_the_same_grace_key_and_none_without_the_grace() {
        let config = test_config();
        let token = sealed_refresh(&config, "rt-1");
        let key = |sent: UpstreamTokenRequest| {
            GraceKey::of(&sent.refreshing.unwrap(), config.refresh_reuse_grace_seconds).unwrap()
        };
        let url = |key: GraceKey| key.cache_url("https://mcp.example.com");
        assert_eq!(url(key(refreshed(&config, &token, None))), url(key(refreshed(&config, &token, None))));
        // Another scope is another refresh (the scope sent to Access is the one granted).
        let scoped = url(key(refreshed(&config, &token, Some("email"))));
        assert_ne!(scoped, url(key(refreshed(&config, &token, None))));
        assert_eq!(scoped, url(key(refreshed(&config, &token, Some("email openid bogus")))));
        let other = sealed_refresh(&config, "rt-2");
        assert_ne!(url(key(refreshed(&config, &other, None))), url(key(refreshed(&config, &token, None))));
        let mut v = vars();
        v.insert("REFRESH_REUSE_GRACE_SECONDS", "0".into());
        let off = config_from(&v).unwrap();
        assert!(
            GraceKey::of(&refreshed(&off, &token, None).refreshing.unwrap(), off.refresh_reuse_grace_seconds).is_none()
        );
        assert!(run(&config, None, &code_request(&config, &[])).unwrap().refreshing.is_none());
    }
}
