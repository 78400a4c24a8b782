"""The one credential deny list: what no file tool, search, repo map or sandboxed command may read.

Shared on purpose. The file tools and search ask `is_secret_path` about a
path relative to the repository; the sandbox masks `HOME_SECRET_PATHS` (and
may test any path it re-binds with `is_secret_path`). A path is matched as a
whole: every component counts, so `secrets/db.txt`, `conf/.aws/credentials`
and `a:b/.env` are all refused however a caller splits its output. Names
are compared case-insensitively (`ID_RSA`, `.ENV`), because a copied key keeps
its meaning whatever its case.

Content counts too: a private key is recognised by its PEM/OpenSSH armour
(`-----BEGIN … PRIVATE KEY-----`) wherever it is stored, so renaming a key to
`notes.txt` does not let it through.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import PurePosixPath

# Any path component whose (lower-cased) name matches one of these is a secret,
# and so is everything beneath it (a folder called `secrets/`, `.ssh/`, `.gnupg/`).
SECRET_NAMES = (
    # environment files and direnv
    ".env", ".env.*", "*.env", ".envrc",
    # SSH and GnuPG
    ".ssh", ".gnupg", "id_rsa", "id_rsa.*", "id_dsa", "id_dsa.*", "id_ecdsa", "id_ecdsa.*", "id_ecdsa_sk*",
    "id_ed25519", "id_ed25519.*", "id_ed25519_sk*",
    # keys and certificates with private parts
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.gpg", "*.asc",
    # network and database passwords
    ".netrc", "_netrc", ".pgpass", ".my.cnf", ".htpasswd",
    # git and package registries
    ".git-credentials", ".npmrc", ".yarnrc", ".yarnrc.yml", ".pypirc", "pip.conf", "pip.ini", ".gem",
    ".cargo-credentials", ".composer-auth.json", "auth.json",
    # cloud and cluster tools
    ".aws", ".azure", ".kube", "kubeconfig", ".boto", "gcloud", "application_default_credentials.json",
    # anything that says what it holds
    "*credentials*", "*credential", "*secret*", "*token*.json", "*.tfvars", "terraform.tfstate*",
)

# Two-component paths whose last name alone is too common to refuse everywhere.
SECRET_PAIRS = (
    (".docker", "config.json"), (".kube", "config"), ("docker", "config.json"), ("gh", "hosts.yml"),
    (".cargo", "credentials"), (".cargo", "credentials.toml"), (".config", "hub"),
)

# What the sandbox hides beneath the user's home whatever it re-binds (paths relative to $HOME).
HOME_SECRET_PATHS = (
    ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".netrc", ".pgpass", ".git-credentials",
    ".npmrc", ".yarnrc", ".yarnrc.yml", ".pypirc", ".config/pip", ".pip", ".config/gcloud", ".config/gh",
    ".config/hub", ".cargo/credentials", ".cargo/credentials.toml", ".gem/credentials", ".m2/settings.xml",
    ".gradle/gradle.properties", ".terraform.d/credentials.tfrc.json", ".config/containers/auth.json",
    ".local/share/keyrings", ".password-store", ".vault-token", ".boto", ".s3cfg", ".env",
)

_NAME = re.compile("|".join(fnmatch.translate(pattern) for pattern in SECRET_NAMES))
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")


def is_secret_name(name: str) -> bool:
    """True when one file or folder name usually holds credentials."""
    return _NAME.match(name.lower()) is not None


def is_secret_path(relative: str | PurePosixPath) -> bool:
    """True when any component of `relative` (or a known pair of them) names credentials."""
    parts = [part.lower() for part in PurePosixPath(str(relative)).parts if part not in ("", ".", "/")]
    if any(_NAME.match(part) for part in parts):
        return True
    return any((a, b) in SECRET_PAIRS for a, b in zip(parts, parts[1:]))


def holds_private_key(data: bytes) -> bool:
    """True when `data` contains a PEM or OpenSSH private key (its BEGIN line)."""
    return _PRIVATE_KEY.search(data) is not None
