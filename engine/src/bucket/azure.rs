//! `blocks_storage.azure.connection_string` (Mimir's key): an Azure storage connection string, as
//! the Azure portal shows it, for SAS-less accounts and the Azurite emulator. When set, it names
//! the account, its key and the blob endpoint; `account_name`, `account_key` and
//! `endpoint_suffix` are then not used.
//!
//! Understood keys (case-insensitive): `AccountName`, `AccountKey`, `BlobEndpoint`,
//! `DefaultEndpointsProtocol` (default `https`), `EndpointSuffix` (default `core.windows.net`) and
//! `UseDevelopmentStorage=true` (Azurite's well-known account on `127.0.0.1:10000`). The
//! endpoints of other services (`QueueEndpoint`, ...) are ignored; `SharedAccessSignature` is
//! refused (not supported yet).

/// Azurite's well-known development account and key (public, documented by Microsoft).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEV_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// What a connection string gives the store.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AzureConnection {
    pub account: String,
    /// `None`: no key (managed identity or `AZURE_*` variables).
    pub key: Option<String>,
    /// The blob service's URL, without a trailing slash: the container goes after it.
    pub endpoint: String,
}

impl AzureConnection {
    /// Parses `s`; the error says which part is wrong (never the key's value).
    pub(crate) fn parse(s: &str) -> Result<AzureConnection, String> {
        let (mut account, mut key, mut endpoint) = (None, None, None);
        let (mut protocol, mut suffix) = ("https".to_string(), "core.windows.net".to_string());
        for (i, part) in s.split(';').map(str::trim).enumerate() {
            if part.is_empty() {
                continue;
            }
            let Some((name, value)) = part.split_once('=') else {
                // Not echoed: it may be a piece of a key.
                return Err(format!("part {} is not a Name=value pair", i + 1));
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "accountname" => account = Some(value.to_string()),
                "accountkey" => key = Some(value.to_string()),
                "blobendpoint" => endpoint = Some(value.trim_end_matches('/').to_string()),
                "defaultendpointsprotocol" => protocol = value.to_ascii_lowercase(),
                "endpointsuffix" => suffix = value.to_string(),
                "usedevelopmentstorage" if value.eq_ignore_ascii_case("true") => {
                    return Ok(AzureConnection {
                        account: DEV_ACCOUNT.into(),
                        key: Some(DEV_KEY.into()),
                        endpoint: DEV_ENDPOINT.into(),
                    });
                }
                "sharedaccesssignature" => {
                    return Err("SharedAccessSignature is not supported; use AccountKey".into());
                }
                _ => {}
            }
        }
        let account = account
            .filter(|a| !a.is_empty())
            .ok_or("AccountName is missing")?;
        if protocol != "https" && protocol != "http" {
            return Err(format!(
                "DefaultEndpointsProtocol must be https or http, not {protocol:?}"
            ));
        }
        let endpoint = endpoint.unwrap_or_else(|| format!("{protocol}://{account}.blob.{suffix}"));
        if !endpoint.starts_with("https://") && !endpoint.starts_with("http://") {
            return Err(format!("BlobEndpoint {endpoint:?} must be an http(s) URL"));
        }
        Ok(AzureConnection {
            account,
            key: key.filter(|k| !k.is_empty()),
            endpoint,
        })
    }

    /// Whether the endpoint is plain HTTP (an emulator on loopback, say).
    pub(crate) fn is_http(&self) -> bool {
        self.endpoint.starts_with("http://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_strings_give_the_account_key_and_endpoint() {
        let c = AzureConnection::parse(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5==;\
             EndpointSuffix=core.chinacloudapi.cn",
        )
        .unwrap();
        assert_eq!(
            c,
            AzureConnection {
                account: "acct".into(),
                key: Some("a2V5==".into()),
                endpoint: "https://acct.blob.core.chinacloudapi.cn".into(),
            }
        );
        assert!(!c.is_http());
        let c = AzureConnection::parse("accountname=acct").unwrap();
        assert_eq!(c.endpoint, "https://acct.blob.core.windows.net");
        assert_eq!(c.key, None);
    }

    #[test]
    fn azurite_strings_use_the_given_blob_endpoint() {
        let c = AzureConnection::parse(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=k==;\
             BlobEndpoint=http://127.0.0.1:41234/devstoreaccount1/;QueueEndpoint=http://x/;",
        )
        .unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:41234/devstoreaccount1");
        assert!(c.is_http());
        let dev = AzureConnection::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(
            (dev.account.as_str(), dev.endpoint.as_str()),
            (DEV_ACCOUNT, DEV_ENDPOINT)
        );
    }

    #[test]
    fn bad_strings_say_what_is_wrong_without_the_key() {
        for (s, want) in [
            ("AccountKey=secret", "AccountName is missing"),
            ("AccountName=a;secret", "is not a Name=value pair"),
            ("AccountName=a;SharedAccessSignature=sv=1", "not supported"),
            (
                "AccountName=a;DefaultEndpointsProtocol=ftp",
                "https or http",
            ),
            ("AccountName=a;BlobEndpoint=127.0.0.1:1", "http(s) URL"),
        ] {
            let e = AzureConnection::parse(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
            assert!(!e.contains("secret"), "{s}: {e}");
        }
    }
}
