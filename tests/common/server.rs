//! S3 servers for the tests: a private moto_server ([`S3Server`]), an s3rver ([`S3rverServer`])
//! and aws-sdk-s3 clients built from explicit static credentials (never the provider chains).

#![allow(dead_code)]

use super::*;

pub const REGION: &str = "us-east-1";

pub const ACCESS_KEY_ID: &str = "test";

pub const SECRET_ACCESS_KEY: &str = "test";

/// How long moto_server may take to accept connections.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(30);

pub fn moto_server_path() -> PathBuf {
    dependency_path("S3MOUNT_MOTO_SERVER", "venv/bin/moto_server")
}

/// A private moto_server on 127.0.0.1, killed (and reaped) on drop.
pub struct S3Server {
    child: Child,
    port: u16,
    endpoint: String,
    client: Client,
    dir: tempfile::TempDir,
}

impl S3Server {
    /// Start moto_server on a free port and wait until it accepts connections.
    pub fn start() -> S3Server {
        let exe = moto_server_path();
        assert!(
            exe.exists(),
            "moto_server not found at {} — run ./scripts/test.sh (or `bash -c '. scripts/lib.sh; \
             s3m_ensure_moto'`), or set S3MOUNT_MOTO_SERVER",
            exe.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("s3mount-moto-")
            .tempdir()
            .expect("tempdir");
        let log = dir.path().join("moto.log");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&exe);
            hermetic_aws_env(&mut cmd);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(File::create(&log).expect("create moto log"))
                .stderr(File::create(&log).expect("create moto log"));
            die_with_parent(&mut cmd, libc::SIGKILL);
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
            if wait_for_port(&mut child, port, SERVER_TIMEOUT) {
                let endpoint = format!("http://127.0.0.1:{port}");
                let client = s3_client(&endpoint);
                return S3Server {
                    child,
                    port,
                    endpoint,
                    client,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = read_lossy(&log);
        }
        panic!("moto_server did not start; last log:\n{last_log}");
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// An aws-sdk-s3 client for this server (path style, static credentials, us-east-1).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The server's request log so far.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("moto.log"))
    }

    /// Create a bucket with this exact name.
    pub async fn create_bucket(&self, name: &str) -> Bucket {
        self.client
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_bucket {name}: {}", DisplayErrorContext(&e)));
        self.bucket(name)
    }

    /// Create a bucket with a fresh unique name (`s3mount-test-…`).
    pub async fn new_bucket(&self) -> Bucket {
        let name = format!("s3mount-test-{}", unique_suffix());
        self.create_bucket(&name).await
    }

    /// A handle on a bucket that may or may not exist.
    pub fn bucket(&self, name: &str) -> Bucket {
        Bucket {
            client: self.client.clone(),
            name: name.to_string(),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for_port(child: &mut Child, port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false; // exited: port taken, or broken install
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        sleep(Duration::from_millis(50));
    }
    false
}

/// An aws-sdk-s3 client for a local endpoint, built without the default provider chains (so it
/// never consults the environment, config files or the instance metadata service).
pub fn s3_client(endpoint: &str) -> Client {
    Client::from_conf(s3_client_config(endpoint).build())
}

/// The settings of [`s3_client`], for a test that changes one of them.
pub fn s3_client_config(endpoint: &str) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "s3mount-tests",
        ))
        .endpoint_url(endpoint)
        .force_path_style(true)
}

/// s3rver's built-in credentials. s3rver rejects any other access key (InvalidAccessKeyId) but
/// does not verify SigV4 signatures, so a wrong secret goes unnoticed: use
/// [`S3Server::enable_iam_auth`] for that.
pub const S3RVER_ACCESS_KEY_ID: &str = "S3RVER";

pub const S3RVER_SECRET_ACCESS_KEY: &str = "S3RVER";

/// An aws-sdk-s3 client for a local endpoint with the given static credentials (path style,
/// us-east-1, request checksums only when required: s3rver stores aws-chunked framing raw).
pub fn s3_client_with_credentials(endpoint: &str, access_key: &str, secret: &str) -> Client {
    let config = s3_client_config(endpoint)
        .credentials_provider(Credentials::new(
            access_key,
            secret,
            None,
            None,
            "s3mount-tests",
        ))
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build();
    Client::from_conf(config)
}

pub fn s3rver_path() -> PathBuf {
    dependency_path("S3MOUNT_S3RVER", "s3rver/node_modules/s3rver/bin/s3rver.js")
}

/// A private s3rver (npm, found through `S3MOUNT_S3RVER`, exported by scripts/test.sh) on a
/// free 127.0.0.1 port, storing into a temporary directory; killed (and reaped) on drop.
/// Unlike a default moto it checks the access key (S3RVER); it does not verify signatures.
pub struct S3rverServer {
    child: Child,
    endpoint: String,
    client: Client,
    dir: tempfile::TempDir,
}

impl S3rverServer {
    pub fn start() -> S3rverServer {
        let script = s3rver_path();
        assert!(
            script.exists(),
            "s3rver not found at {} — run ./scripts/test.sh (or `bash -c '. scripts/lib.sh; \
             s3m_ensure_s3rver'`), or set S3MOUNT_S3RVER",
            script.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("s3mount-s3rver-")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("create s3rver data dir");
        let log = dir.path().join("s3rver.log");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("node");
            hermetic_aws_env(&mut cmd);
            cmd.env("NODE_OPTIONS", "--openssl-legacy-provider")
                .arg(&script)
                .arg("-d")
                .arg(&data)
                .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--silent"])
                .stdin(Stdio::null())
                .stdout(File::create(&log).expect("create s3rver log"))
                .stderr(File::create(&log).expect("create s3rver log"));
            die_with_parent(&mut cmd, libc::SIGKILL);
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn node {}: {e}", script.display()));
            if wait_for_port(&mut child, port, SERVER_TIMEOUT) {
                let endpoint = format!("http://127.0.0.1:{port}");
                let client = s3_client_with_credentials(
                    &endpoint,
                    S3RVER_ACCESS_KEY_ID,
                    S3RVER_SECRET_ACCESS_KEY,
                );
                return S3rverServer {
                    child,
                    endpoint,
                    client,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = read_lossy(&log);
        }
        panic!("s3rver did not start; last log:\n{last_log}");
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A client with s3rver's credentials.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Create a bucket with this exact name (with the right credentials).
    pub async fn create_bucket(&self, name: &str) -> Bucket {
        self.client
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_bucket {name}: {}", DisplayErrorContext(&e)));
        Bucket {
            client: self.client.clone(),
            name: name.to_string(),
        }
    }
}

impl Drop for S3rverServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Access keys created in a moto server's IAM by [`S3Server::enable_iam_auth`].
#[derive(Clone, Debug)]
pub struct IamKeys {
    /// A user whose inline policy allows `s3:*`.
    pub allowed: (String, String),
    /// A user with no policy at all (every S3 call is denied).
    pub denied: (String, String),
}

impl S3Server {
    /// Turns on moto's request authentication (`/moto-api/reset-auth`, the server-mode form of
    /// `INITIAL_NO_AUTH_ACTION_COUNT=0`): from then on moto checks that the access key exists in
    /// its IAM, that the SigV4 signature matches the secret, and the user's IAM policies.
    /// Creates two users first (through boto3 from moto's own venv); returns their keys.
    /// Seed the server before calling this: the default `test`/`test` client is refused after.
    pub fn enable_iam_auth(&self) -> IamKeys {
        let python = moto_server_path().with_file_name("python");
        let script = r#"
import json, sys, urllib.request
import boto3
ep = sys.argv[1]
iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
keys = []
for user, policy in (("s3mount-allowed", True), ("s3mount-denied", False)):
    iam.create_user(UserName=user)
    if policy:
        iam.put_user_policy(UserName=user, PolicyName="all-s3", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    keys += [k["AccessKeyId"], k["SecretAccessKey"]]
req = urllib.request.Request(ep + "/moto-api/reset-auth", data=b"0", method="POST",
                             headers={"Content-Type": "application/octet-stream"})
urllib.request.urlopen(req).read()
print(" ".join(keys))
"#;
        let mut cmd = Command::new(&python);
        hermetic_aws_env(&mut cmd);
        let out = cmd
            .args(["-c", script, &self.endpoint])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
        assert!(
            out.status.success(),
            "enabling moto's IAM auth failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let k: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(k.len(), 4, "unexpected output: {text}");
        IamKeys {
            allowed: (k[0].to_string(), k[1].to_string()),
            denied: (k[2].to_string(), k[3].to_string()),
        }
    }
}
