"""The CodeCommit actions that each level of repository access grants.

A repository's ``access`` in the config is ``read``, ``contribute`` or an
explicit list of actions. Every action listed here takes a repository ARN as
its resource, so the policies name exactly the configured repositories.
Action names follow the CodeCommit permissions reference ("Actions,
resources, and condition keys for AWS CodeCommit" in the Service
Authorization Reference).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bootstrap.policy import wildcard_match

GIT_PULL = "codecommit:GitPull"
GIT_PUSH = "codecommit:GitPush"

# Clone and fetch, and the read-only calls a Git UI or the console makes on
# one repository.
READ_ACTIONS = (
    GIT_PULL,
    "codecommit:BatchDescribeMergeConflicts",
    "codecommit:BatchGetCommits",
    "codecommit:BatchGetPullRequests",
    "codecommit:BatchGetRepositories",
    "codecommit:DescribeMergeConflicts",
    "codecommit:DescribePullRequestEvents",
    "codecommit:GetBlob",
    "codecommit:GetBranch",
    "codecommit:GetComment",
    "codecommit:GetCommentReactions",
    "codecommit:GetCommentsForComparedCommit",
    "codecommit:GetCommentsForPullRequest",
    "codecommit:GetCommit",
    "codecommit:GetCommitHistory",
    "codecommit:GetCommitsFromMergeBase",
    "codecommit:GetDifferences",
    "codecommit:GetFile",
    "codecommit:GetFolder",
    "codecommit:GetMergeCommit",
    "codecommit:GetMergeConflicts",
    "codecommit:GetMergeOptions",
    "codecommit:GetObjectIdentifier",
    "codecommit:GetPullRequest",
    "codecommit:GetPullRequestApprovalStates",
    "codecommit:GetPullRequestOverrideState",
    "codecommit:GetReferences",
    "codecommit:GetRepository",
    "codecommit:GetTree",
    "codecommit:ListBranches",
    "codecommit:ListPullRequests",
)

# Push, branches and pull requests on top of read. Repository deletion and
# settings (name, description, default branch, triggers, encryption key,
# tags, approval rules and their templates, approval overrides) stay out.
CONTRIBUTE_ACTIONS = (
    *READ_ACTIONS,
    GIT_PUSH,
    "codecommit:CreateBranch",
    "codecommit:DeleteBranch",
    "codecommit:MergeBranchesByFastForward",
    "codecommit:MergeBranchesBySquash",
    "codecommit:MergeBranchesByThreeWay",
    "codecommit:CreatePullRequest",
    "codecommit:EvaluatePullRequestApprovalRules",
    "codecommit:MergePullRequestByFastForward",
    "codecommit:MergePullRequestBySquash",
    "codecommit:MergePullRequestByThreeWay",
    "codecommit:PostCommentForComparedCommit",
    "codecommit:PostCommentForPullRequest",
    "codecommit:PostCommentReply",
    "codecommit:PutCommentReaction",
    "codecommit:UpdateComment",
    "codecommit:UpdatePullRequestApprovalState",
    "codecommit:UpdatePullRequestDescription",
    "codecommit:UpdatePullRequestStatus",
    "codecommit:UpdatePullRequestTitle",
)

PRESETS = {"read": READ_ACTIONS, "contribute": CONTRIBUTE_ACTIONS}
DEFAULT_ACCESS = "read"

# An action of an explicit list: the codecommit prefix and a name in which
# '*' and '?' are IAM wildcards.
ACTION_RE = re.compile(r"codecommit:[A-Za-z*?]+\Z")


def action_matches(pattern: str, action: str) -> bool:
    """Return whether an IAM action pattern covers an action, ignoring case."""
    return wildcard_match(pattern, action, ignore_case=True)


def check_actions(actions: Sequence[object]) -> list[tuple[int | None, str, object]]:
    """Return (index, rule, value) for each broken rule of an explicit list."""
    problems: list[tuple[int | None, str, object]] = []
    if not actions:
        problems.append((None, "must list at least one action", list(actions)))
        return problems
    seen: set[str] = set()
    for index, action in enumerate(actions):
        if not isinstance(action, str) or ACTION_RE.match(action) is None:
            rule = "must be a CodeCommit action such as codecommit:GitPull"
            problems.append((index, rule, action))
        elif action.lower() in seen:
            problems.append((index, "listed twice", action))
        else:
            seen.add(action.lower())
    valid = [a for a in actions if isinstance(a, str)]
    if not any(action_matches(a, GIT_PULL) for a in valid):
        rule = f"must include {GIT_PULL}, which clone and fetch need"
        problems.append((None, rule, list(actions)))
    return problems
