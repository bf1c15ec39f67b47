"""`conveyor pipeline create|update|list|show|archive` and `conveyor member add|remove|list`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.client_common import (
    EXIT_OK,
    Parser,
    UsageError,
    add_common,
    print_json,
    run,
    table,
    to_json,
)
from conveyor.v1 import common_pb2, pipeline_pb2
from rpc.client import Client

ROLES = {"viewer": pipeline_pb2.ROLE_VIEWER, "developer": pipeline_pb2.ROLE_DEVELOPER,
         "admin": pipeline_pb2.ROLE_ADMIN}
ROLE_NAMES = {value: name for name, value in ROLES.items()}


def _shown(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _read(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {_shown(path)}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {_shown(path)}: it is not UTF-8 text") from None


def _show(pipeline: common_pb2.Pipeline, as_json: bool, with_yaml: bool = False) -> None:
    if as_json:
        print_json(to_json(pipeline))
        return
    state = " (archived)" if pipeline.archived else ""
    print(f"pipeline {pipeline.name}{state}  id {pipeline.id}")
    if pipeline.description:
        print(f"  {pipeline.description}")
    if with_yaml:
        print("---")
        print(pipeline.workflow_yaml.rstrip())


def pipeline_main(argv: list[str]) -> int:
    p = Parser(prog="conveyor pipeline", description="Manage pipelines.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                           help="one of these; `ACTION --help` shows its options")
    create = sub.add_parser("create", help="register a workflow file as a pipeline")
    create.add_argument("name", help="the new pipeline's name")
    create.add_argument("--file", "-f", required=True, help="workflow YAML ('-': stdin)")
    create.add_argument("--description", default="", help="one line saying what it is for")
    update = sub.add_parser("update", help="change a pipeline's workflow or description")
    update.add_argument("name", help="the pipeline's name")
    update.add_argument("--file", "-f", help="new workflow YAML ('-': stdin)")
    update.add_argument("--description", default="", help="a new description")
    listing = sub.add_parser("list", help="the pipelines you can see")
    listing.add_argument("--all", action="store_true", help="archived ones too")
    show = sub.add_parser("show", help="one pipeline with its workflow and members")
    show.add_argument("name", help="the pipeline's name")
    archive = sub.add_parser("archive", help="stop new builds; keep its history")
    archive.add_argument("name", help="the pipeline's name")
    for sp in (create, update, listing, show, archive):
        add_common(sp)
    args = p.parse_args(argv)
    file = _shown(args.file) if getattr(args, "file", None) else ""
    return run("conveyor pipeline", args, lambda client: _pipeline(client, args), file=file)


def _pipeline(client: Client, args: argparse.Namespace) -> int:
    api = client.pipelines
    if args.action == "create":
        created = api.CreatePipeline(pipeline_pb2.CreatePipelineRequest(
            name=args.name, workflow_yaml=_read(args.file), description=args.description))
        _show(created.pipeline, args.json)
    elif args.action == "update":
        if not args.file and not args.description:
            raise UsageError("nothing to update: give --file and/or --description")
        updated = api.UpdatePipeline(pipeline_pb2.UpdatePipelineRequest(
            name=args.name, workflow_yaml=_read(args.file) if args.file else "",
            description=args.description))
        _show(updated.pipeline, args.json)
    elif args.action == "list":
        found: list[common_pb2.Pipeline] = []
        token = ""
        while True:
            page = api.ListPipelines(pipeline_pb2.ListPipelinesRequest(
                page_token=token, show_archived=args.all))
            found.extend(page.pipelines)
            token = page.next_page_token
            if not token:
                break
        if args.json:
            print_json([to_json(pipe) for pipe in found])
        else:
            rows = [[pipe.name, "archived" if pipe.archived else "active", pipe.description]
                    for pipe in found]
            print("\n".join(table(["NAME", "STATE", "DESCRIPTION"], rows)))
    elif args.action == "show":
        pipe = api.GetPipeline(pipeline_pb2.GetPipelineRequest(name=args.name)).pipeline
        members = api.ListMembers(pipeline_pb2.ListMembersRequest(pipeline=args.name)).members
        if args.json:
            print_json({**to_json(pipe), "members": [to_json(m) for m in members]})
        else:
            _show(pipe, False, with_yaml=True)
            print("--- members: " + ", ".join(
                f"{m.user} ({ROLE_NAMES.get(m.role, '?')})" for m in members))
    else:
        archived = api.ArchivePipeline(pipeline_pb2.ArchivePipelineRequest(name=args.name))
        _show(archived.pipeline, args.json)
    return EXIT_OK


def member_main(argv: list[str]) -> int:
    p = Parser(prog="conveyor member", description="Manage who may do what on a pipeline.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                           help="one of these; `ACTION --help` shows its options")
    add = sub.add_parser("add", help="add a member, or change their role")
    add.add_argument("pipeline", help="the pipeline's name")
    add.add_argument("user", help="the user's name")
    add.add_argument("role", choices=sorted(ROLES),
                     help="viewer reads; developer also triggers, cancels, retries; "
                          "admin also manages the pipeline")
    remove = sub.add_parser("remove", help="remove a member")
    remove.add_argument("pipeline", help="the pipeline's name")
    remove.add_argument("user", help="the user's name")
    listing = sub.add_parser("list", help="the members of a pipeline")
    listing.add_argument("pipeline", help="the pipeline's name")
    for sp in (add, remove, listing):
        add_common(sp)
    args = p.parse_args(argv)
    return run("conveyor member", args, lambda client: _member(client, args))


def _member(client: Client, args: argparse.Namespace) -> int:
    api = client.pipelines
    if args.action == "add":
        member = api.AddMember(pipeline_pb2.AddMemberRequest(
            pipeline=args.pipeline, user=args.user, role=ROLES[args.role])).member
        if args.json:
            print_json(to_json(member))
        else:
            print(f"{member.user} is now a {ROLE_NAMES[member.role]} of {args.pipeline}")
    elif args.action == "remove":
        api.RemoveMember(pipeline_pb2.RemoveMemberRequest(pipeline=args.pipeline,
                                                          user=args.user))
        if args.json:
            print_json({"removed": args.user, "pipeline": args.pipeline})
        else:
            print(f"{args.user} is no longer a member of {args.pipeline}")
    else:
        members = api.ListMembers(pipeline_pb2.ListMembersRequest(pipeline=args.pipeline))
        if args.json:
            print_json([to_json(m) for m in members.members])
        else:
            rows = [[m.user, ROLE_NAMES.get(m.role, "?")] for m in members.members]
            print("\n".join(table(["USER", "ROLE"], rows)))
    return EXIT_OK
