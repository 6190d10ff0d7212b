"""What the lint and the resolver say about a release: `LEVEL RULE FILE[:LINE] message`."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"
INFO = "info"


@dataclass(frozen=True)
class Finding:
    level: str
    rule: str
    file: str
    line: int | None
    message: str

    @classmethod
    def error(cls, rule: str, file: str, line: int | None, message: str) -> Finding:
        return cls(ERROR, rule, file, line, message)

    @classmethod
    def warning(cls, rule: str, file: str, line: int | None, message: str) -> Finding:
        return cls(WARNING, rule, file, line, message)

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return " ".join(part for part in (self.level.upper(), self.rule, where, self.message) if part)

    def as_dict(self) -> dict:
        return {"level": self.level, "rule": self.rule, "file": self.file, "line": self.line, "message": self.message}


def has_errors(findings: list[Finding]) -> bool:
    return any(f.level == ERROR for f in findings)
