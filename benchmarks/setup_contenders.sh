#!/usr/bin/env bash
# One virtual environment per contender under benchmarks/.venvs/, so that neither the SageMaker SDK
# nor MLflow becomes a dependency of sagerun, and neither's pins (boto3, numpy, sqlalchemy...) touch
# sagerun's venv. Idempotent: an existing venv is only brought up to the pinned versions.
#
#   bash benchmarks/setup_contenders.sh          # then: .venv/bin/python benchmarks/compare.py
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3.11}"
venvs="$here/.venvs"
mkdir -p "$venvs"

make_venv() {  # name, then the packages to install into it
    local name="$1"; shift
    [ -x "$venvs/$name/bin/python" ] || "$python" -m venv "$venvs/$name"
    "$venvs/$name/bin/python" -m pip install --quiet --upgrade pip
    "$venvs/$name/bin/python" -m pip install --quiet "$@"
}

# The last 2.x SDK, the one issue 6 measured; numpy for the training-loop workload.
make_venv sagemaker "sagemaker==2.257.7" numpy &
# MLflow 3.x with its default SQLite tracking store (sqlalchemy comes with it).
make_venv mlflow "mlflow>=3,<4" numpy &
wait
"$venvs/sagemaker/bin/python" -c "import sagemaker; print('sagemaker', sagemaker.__version__)"
"$venvs/mlflow/bin/python" -c "import mlflow; print('mlflow', mlflow.__version__)"
