"""Render the lifecycle script of each app type from the Jinja templates.

Python owns the logic and the templates own the text. In shell templates
every ``{{ expression }}`` passes through :func:`shell_quote` by way of
Jinja's ``finalize`` hook, so no template can emit an unquoted value.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import zopfli.gzip

from bootstrap import __version__
from bootstrap.config import (
    APP_SLUGS,
    HASH_LENGTH,
    Config,
    Helper,
    Network,
    Repository,
    wheel_sha256,
)
from bootstrap.errors import ScriptTooLargeError

# CreateStudioLifecycleConfig takes the script base64-encoded, at most this
# many characters after encoding (about 12,288 bytes before).
CONTENT_LIMIT = 16384
ENDPOINT_PLACEHOLDER = "@ENDPOINT@"
DEFAULT_HOST = "git-codecommit.{region}.amazonaws.com"
# Host names for which the AWS CLI's credential helper signs without
# --ignore-host-check: it requires amazon.com or amazonaws.com in the host.
AMAZON_HOST = re.compile(r"amazon\.com|amazonaws\.com")
# The [services] section of ~/.aws/config that the managed profiles name to
# reach STS through the configured endpoint.
SERVICES_SECTION = "studio-bootstrap"

# The app types of Studio Classic, whose apps share the user's EFS home, so
# that a lock or a leftover of another host may belong to a live sync.
SHARED_HOME_APP_TYPES = ("JupyterServer", "KernelGateway")

# The checks that the source turns off line by line, for data that contains
# text for awk and git rather than shell code.
MINIFIED_DISABLE = "SC2016"
# The program's own names, which shorten_names may replace.
INTERNAL_NAME = re.compile(r"\b(?:sb|SB)_[A-Za-z0-9_]+\b")
# sb_pip_SOURCE is called by a name built at run time ("sb_pip_$source"), and
# the bench traces sb_step and sb_sync_repo in the running program.
KEPT_PREFIXES = ("sb_pip_",)
KEPT_NAMES = frozenset({"sb_step", "sb_sync_repo"})

# The start of a part of the script: a data assignment or a function.
PART_START = re.compile(r"^(?:(SB_[A-Z_]+)=|(sb_[a-z_]+|main)\(\) \{)", re.MULTILINE)


def shell_quote(value: object) -> str:
    """Quote a value as one bash word in single quotes; any byte is inert."""
    text = str(value)
    return "'" + text.replace("'", "'\\''") + "'"


def _plain_text(value: object) -> str:
    """Pass a value into an INI or gitconfig template, refusing what breaks them."""
    text = str(value)
    if any(ord(c) < 0x20 or c in '"\\' for c in text):
        raise ValueError(f"value {text!r} cannot be written to a config file")
    return text


class _TemplateLoader(jinja2.BaseLoader):
    """Loads templates as UTF-8 with LF endings, dropping a BOM."""

    def __init__(self) -> None:
        self.root = resources.files("bootstrap.templates")

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        path = self.root / template
        try:
            raw = path.read_bytes()
        except FileNotFoundError as exc:
            raise jinja2.TemplateNotFound(template) from exc
        text = raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
        return text, str(path), lambda: True


def _environment(finalize: Callable[[Any], str]) -> jinja2.Environment:
    # Bash uses "{#" in "${#array[@]}", so Jinja comments take other markers.
    return jinja2.Environment(
        loader=_TemplateLoader(),
        finalize=finalize,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        newline_sequence="\n",
        comment_start_string="{##",
        comment_end_string="##}",
        autoescape=False,
    )


SHELL = _environment(shell_quote)
TEXT = _environment(_plain_text)


@dataclass(frozen=True)
class RenderedScript:
    """One lifecycle script: its readable source and the packed text sent to AWS."""

    app_type: str
    prefix: str
    source: str
    text: str
    # The ARN of another lifecycle configuration whose script this one runs.
    composed_with: str | None = None
    # The domain the script is registered on. It is part of the name, so that
    # two domains of one account and region never share a version.
    domain_id: str = ""

    @property
    def content(self) -> bytes:
        return self.text.encode("utf-8")

    @property
    def encoded(self) -> str:
        """The content for CreateStudioLifecycleConfig: one unbroken base64 string."""
        return base64.b64encode(self.content).decode("ascii")

    @property
    def digest(self) -> str:
        """A short hash of the domain and the content, part of the LCC name."""
        digest = hashlib.sha256(self.domain_id.encode() + b"\0" + self.content)
        return digest.hexdigest()[:HASH_LENGTH]

    @property
    def slug(self) -> str:
        return APP_SLUGS[self.app_type]

    @property
    def filename(self) -> str:
        return f"{self.prefix}-{self.slug}.sh"

    @property
    def source_filename(self) -> str:
        return f"{self.prefix}-{self.slug}.source.sh"

    @property
    def lcc_name(self) -> str:
        return f"{self.prefix}-{self.slug}-{self.digest}"

    def largest_parts(self, count: int = 3) -> list[tuple[str, int]]:
        """Return the biggest data assignments and functions of the source."""
        return largest_parts(self.source, count)


def aws_block(
    repositories: Iterable[Repository], sts_endpoint_url: str | None = None
) -> str:
    """Render the managed ~/.aws/config block: one profile per repository.

    With an STS endpoint URL, each profile names a [services] section that
    sets it for STS alone, which botocore's assume-role provider uses. A
    profile-wide endpoint_url would also redirect the profile's other
    service calls, such as the CodeCommit API of a Git UI, to STS.
    """
    services = SERVICES_SECTION if sts_endpoint_url else None
    template = TEXT.get_template("aws_profile.ini.j2")
    sections = [
        template.render(repository=r, services=services).rstrip("\n")
        for r in repositories
    ]
    if services is not None:
        section = TEXT.get_template("aws_services.ini.j2").render(
            name=services, sts_endpoint_url=sts_endpoint_url
        )
        sections.append(section.rstrip("\n"))
    return "\n".join(sections)


def git_block(
    repositories: Iterable[Repository],
    host: str | None = None,
    network: Network | None = None,
) -> str:
    """Render the Git credential sections for the CodeCommit HTTPS hosts.

    Per host, the first repository gets the host-wide section, which resets
    inherited helpers and turns on UseHttpPath. Each other repository on that
    host gets a section for its own path, because its profile differs. The
    helper acts on "get" only: the AWS CLI's "store" and "erase" do nothing
    but would still start the CLI after every fetch. The CLI signs only for
    Amazon host names unless get has --ignore-host-check, so a host given at
    run time, or a configured endpoint without an Amazon name, gets that
    option.

    ``host`` is the one host of every repository (the run-time placeholder).
    Otherwise a repository whose region has a Git endpoint in ``network``
    uses that endpoint. With ``network.rewrite_public_git_urls``, a
    url.insteadOf section sends the region's public HTTPS base there too, so
    that URLs pasted into a Git UI work. It is off by default because it
    also takes those URLs away from a credential helper that the user set
    for the public host.
    """
    template = TEXT.get_template("git_credential.gitconfig.j2")
    seen: set[str] = set()
    sections = []
    rewrites: dict[str, str] = {}
    for repository in repositories:
        endpoint = host
        if endpoint is None and network is not None:
            endpoint = network.git_endpoint(repository.region)
            if endpoint is not None and network.rewrite_public_git_urls:
                rewrites[repository.region] = endpoint
        name = endpoint or DEFAULT_HOST.format(region=repository.region)
        host_section = name not in seen
        seen.add(name)
        path = "" if host_section else f"/v1/repos/{repository.name}"
        sections.append(
            template.render(
                host=name,
                path=path,
                profile=repository.profile,
                host_section=host_section,
                ignore_host_check=endpoint is not None
                and AMAZON_HOST.search(endpoint) is None,
            ).rstrip("\n")
        )
    rewrite = TEXT.get_template("git_rewrite.gitconfig.j2")
    for region, endpoint in sorted(rewrites.items()):
        public = DEFAULT_HOST.format(region=region)
        sections.append(rewrite.render(endpoint=endpoint, public=public).rstrip("\n"))
    return "\n".join(sections)


def git_endpoints(config: Config) -> list[tuple[str, str]]:
    """Return the configured Git endpoints of the repositories' regions."""
    regions = {r.region for r in config.repositories}
    return [(r, h) for r, h in config.network.git_endpoints if r in regions]


def helper_context(helper: Helper, network: Network) -> dict[str, Any]:
    """Return what the script needs of each configured helper source.

    Only the sources in ``helper.sources`` get their code and data rendered,
    so that the default config's script carries none of the others.
    """
    sources = helper.sources
    context: dict[str, Any] = {
        "sources": list(sources),
        # The AWS CLI has no wheel in S3, and installs from pip's own index
        # when s3 is the only source.
        "cli_sources": [s for s in sources if s != "s3"] or ["pypi"],
        "pin": f"=={helper.version}" if helper.version else "",
        "codeartifact": helper.codeartifact,
    }
    if "wheelhouse" in sources:
        context["wheelhouse"] = helper.wheelhouse
    if "index" in sources:
        context["index_url"] = helper.index_url
    if helper.codeartifact:
        # The script writes the token to a netrc file for this host, which pip
        # matches without the port.
        context["index_host"] = urlsplit(str(helper.index_url)).hostname
        context["codeartifact_domain"] = helper.codeartifact_domain
        context["codeartifact_owner"] = helper.codeartifact_owner
        context["codeartifact_region"] = helper.codeartifact_region
        context["codeartifact_endpoint_url"] = network.codeartifact_endpoint_url or ""
    if "s3" in sources:
        context["bucket"] = helper.bucket
        context["bucket_region"] = helper.bucket_region
        context["key"] = helper.key
        context["wheel_name"] = helper.wheel_name
        context["sha256"] = wheel_sha256(helper)
        context["s3_endpoint_url"] = network.s3_endpoint_url or ""
    return context


def render_script(config: Config, app_type: str) -> RenderedScript:
    """Render the lifecycle script of one app type."""
    repositories = config.repositories
    context = {
        "version": __version__,
        "app_type": app_type,
        "shared_home": app_type in SHARED_HOME_APP_TYPES,
        "strict": "true" if config.strict else "false",
        "repositories": [_repository_context(r) for r in repositories],
        "aws_block": aws_block(repositories, config.network.sts_endpoint_url),
        "services_section": (
            SERVICES_SECTION if config.network.sts_endpoint_url else None
        ),
        "git_block": git_block(repositories, network=config.network),
        "git_endpoint_block": git_block(repositories, ENDPOINT_PLACEHOLDER),
        "git_endpoints": git_endpoints(config),
        "helper": helper_context(config.helper, config.network),
    }
    source = SHELL.get_template("on_start.sh.j2").render(context)
    text = pack(source, config.strict)
    return RenderedScript(
        app_type, config.prefix, source, text, domain_id=config.domain.id
    )


def minify(source: str) -> str:
    """Drop comment lines and the space indentation of a rendered program.

    The templates put no line that starts with '#' or a space inside a quoted
    string (INI and gitconfig text is indented with tabs), so this changes no
    data. The tests run the packed scripts.
    """
    lines = []
    for number, line in enumerate(source.split("\n")):
        stripped = line.lstrip(" ")
        if number > 0 and stripped.startswith("#"):
            continue
        lines.append(stripped)
        if number == 0:
            # One directive for the whole program replaces the per-line ones
            # of the source, which the linter checks in full.
            lines.append(f"# shellcheck disable={MINIFIED_DISABLE}")
    return "\n".join(line for line in lines if line)


def compose(
    script: RenderedScript, other_arn: str, other_content: bytes, strict: bool
) -> RenderedScript:
    """Render a script that runs another LCC's script, then ours, each isolated.

    The other script runs as its own file, so its shebang and its exit stay its
    own. The composed script exits with the first failure of the two.
    """
    other_name = other_arn.rsplit("/", 1)[-1]
    template = SHELL.get_template("composed.sh.j2")
    program = minify(script.source)
    for attempt in (program, shorten_names(program)):
        source = template.render(
            other_name=other_name,
            other_payload=_gzip_base64(other_content),
            payload=_gzip_base64(attempt.encode("utf-8")),
            failure_status=1 if strict else 0,
        )
        text = minify(source) + "\n"
        # As in pack, short names only for a script that does not fit.
        if _encoded_length(text) <= CONTENT_LIMIT:
            break
    return RenderedScript(
        script.app_type, script.prefix, source, text, other_arn, script.domain_id
    )


def compress(data: bytes) -> bytes:
    """Compress data as gzip that ``gzip -dc`` reads, with the same bytes each time.

    Zopfli's output is about 3% smaller than zlib's best level, and its header
    carries no time stamp.
    """
    return bytes(zopfli.gzip.compress(data, numiterations=15))


def _gzip_base64(data: bytes) -> str:
    # One unbroken line: line breaks every 76 characters would cost about
    # 1.3% of the payload, which base64 -d does not need.
    return base64.b64encode(compress(data)).decode("ascii")


def pack(source: str, strict: bool) -> str:
    """Wrap a minified, compressed program in a script that unpacks and runs it.

    A program that does not fit the content limit that way is packed again
    with short internal names (``shorten_names``).
    """
    template = SHELL.get_template("packed.sh.j2")
    status = 1 if strict else 0
    program = minify(source)
    text = template.render(
        payload=_gzip_base64(program.encode()), failure_status=status
    )
    if _encoded_length(text) <= CONTENT_LIMIT:
        return text
    payload = _gzip_base64(shorten_names(program).encode())
    return template.render(payload=payload, failure_status=status)


def shorten_names(program: str) -> str:
    """Give a program's own functions (sb_*) and variables (SB_*) short names.

    The names keep their prefixes, because the program lists its functions
    by prefix to write sync.sh, and the most frequent names get the shortest
    ones. Names that code outside the program refers to stay as they are.
    The readable program is lifecycle/*.source.sh either way.
    """
    counts = Counter(match.group(0) for match in INTERNAL_NAME.finditer(program))
    renames: dict[str, str] = {}
    numbers = {"sb": 0, "SB": 0}
    for name, _ in counts.most_common():
        if name in KEPT_NAMES or name.startswith(KEPT_PREFIXES):
            continue
        prefix = name[:2]
        short = _base36(numbers[prefix])
        renames[name] = f"{prefix}_{short if prefix == 'sb' else short.upper()}"
        numbers[prefix] += 1
    return INTERNAL_NAME.sub(lambda m: renames.get(m.group(0), m.group(0)), program)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = digits[number % 36]
    while number >= 36:
        number //= 36
        text = digits[number % 36] + text
    return text


def _encoded_length(text: str) -> int:
    return len(base64.b64encode(text.encode("utf-8")))


def _repository_context(repository: Repository) -> dict[str, str]:
    return {
        "name": repository.name,
        "region": repository.region,
        "profile": repository.profile,
        "path": repository.path,
        "branch": repository.branch or "",
        "transport": repository.transport,
        "https_fallback": "true" if repository.https_fallback else "false",
    }


def render_all(config: Config) -> list[RenderedScript]:
    """Render one script per configured app type."""
    return [render_script(config, app_type) for app_type in config.app_types]


def check_size(script: RenderedScript) -> None:
    """Raise ScriptTooLargeError when the encoded script exceeds the API limit."""
    encoded = len(script.encoded)
    if encoded <= CONTENT_LIMIT:
        return
    parts = ", ".join(
        f"{name} ({size:,} bytes)" for name, size in script.largest_parts()
    )
    raise ScriptTooLargeError(
        f"{script.filename}: {encoded:,} base64 characters exceed the "
        f"{CONTENT_LIMIT:,} limit of a lifecycle configuration "
        f"({len(script.content):,} bytes before encoding, "
        f"{len(script.source.encode()):,} bytes unpacked); largest parts: {parts}. "
        "Configure fewer repositories per domain, fewer helper sources (each "
        "adds its own install code), or shorter values."
    )


def script_parts(text: str) -> list[tuple[str, int, int]]:
    """Return each data assignment and function of a script: name, start, end."""
    starts = [(m.start(), m.group(1) or m.group(2)) for m in PART_START.finditer(text)]
    parts = []
    for index, (start, name) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(text)
        parts.append((name, start, end))
    return parts


def largest_parts(text: str, count: int = 3) -> list[tuple[str, int]]:
    """Split a script into its data assignments and functions; return the biggest."""
    parts = script_parts(text)
    sizes: dict[str, int] = (
        {"header": len(text[: parts[0][1]].encode())} if parts else {}
    )
    for name, start, end in parts:
        sizes[name] = sizes.get(name, 0) + len(text[start:end].encode())
    ranked = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:count]


def write_scripts(scripts: Iterable[RenderedScript], folder: Path) -> list[Path]:
    """Write scripts into a folder, replacing each file only when it changed."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for script in scripts:
        for name, text in (
            (script.filename, script.text),
            (script.source_filename, script.source),
        ):
            path = folder / name
            _write_if_changed(path, text.encode("utf-8"))
            written.append(path)
    return written


def _write_if_changed(path: Path, content: bytes) -> None:
    if path.exists() and path.read_bytes() == content:
        return
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    temporary.replace(path)
