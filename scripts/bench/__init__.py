"""s3mount benchmark harness: s3mount side by side with curl/boto3 and s3fs on a local s3rver.

Run it through ./scripts/bench.sh, which installs what is missing and starts `python -m bench`.
Modules: config (knobs), stats (pure number helpers), results and report (the tables), chart
(the PNG), server (s3rver and its request log), s3 (boto3 calls), system (processes, timing,
CPU, RSS, page cache), mounts (s3mount and s3fs), measure (the timed commands), workloads/ (one
module per workload) and runner (the order of the run, cleanup).
"""
