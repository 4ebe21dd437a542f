# shellcheck shell=bash
# Source me: exports SPARK_HOME for spark-submit, from the PyPI `pyspark` wheel (its jars/ and bin/
# are Spark 3.5.9 for Scala 2.12; its sbin/ lacks the daemon scripts) in ~/.cache/deepcad/pyspark-3.5.9, installed
# there on first use. An existing SPARK_HOME is kept when it is a Spark 3.5 for Scala 2.12 (what
# the jar is built against: jars/spark-core_2.12-3.5.*.jar and bin/spark-submit). Also sets what Spark
# needs on a single machine: SPARK_LOCAL_IP=127.0.0.1 and SPARK_SCALA_VERSION=2.12 (the pyspark
# layout has no RELEASE file to tell local-cluster executors which Scala build they run).
# Returns non-zero, with the reason in DEEPCAD_SPARK_UNAVAILABLE, when pyspark cannot be installed.
DEEPCAD_SPARK_VERSION=3.5.9
DEEPCAD_SPARK_UNAVAILABLE=""
if [ -z "${SPARK_HOME:-}" ] || [ ! -x "$SPARK_HOME/bin/spark-submit" ] \
    || ! compgen -G "$SPARK_HOME/jars/spark-core_2.12-3.5.*.jar" >/dev/null; then
    deepcad_spark_venv="${DEEPCAD_CACHE:-$HOME/.cache/deepcad}/pyspark-$DEEPCAD_SPARK_VERSION"
    if [ ! -f "$deepcad_spark_venv/.complete" ]; then
        echo "deepcad: installing pyspark $DEEPCAD_SPARK_VERSION (Spark for spark-submit) into $deepcad_spark_venv (one time, ~370 MB)" >&2
        mkdir -p "$(dirname "$deepcad_spark_venv")"
        if ! { python3 -m venv "$deepcad_spark_venv" \
                && "$deepcad_spark_venv/bin/pip" install --quiet --no-deps "pyspark==$DEEPCAD_SPARK_VERSION"; } >&2; then
            DEEPCAD_SPARK_UNAVAILABLE="pip could not install pyspark==$DEEPCAD_SPARK_VERSION into $deepcad_spark_venv"
        else
            touch "$deepcad_spark_venv/.complete"
        fi
    fi
    if [ -z "$DEEPCAD_SPARK_UNAVAILABLE" ]; then
        SPARK_HOME="$(echo "$deepcad_spark_venv"/lib/python3*/site-packages/pyspark)"
        export SPARK_HOME
    fi
    unset deepcad_spark_venv
fi
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
export SPARK_SCALA_VERSION="${SPARK_SCALA_VERSION:-2.12}"
[ -z "$DEEPCAD_SPARK_UNAVAILABLE" ]
