# The built-in model's simulated training movies, shared by models/train-default.sh (the shipped
# recipe) and the experiments in eval/ that try other mixes. Source it, then call
#   simulate_movies DEEPCAD OUT_DIR FIRST_SEED TABLE_NAME
# TABLE_NAME is one of the arrays below; each row is
#   photons width height frames frame-rate gain offset read-noise neurons [extra simulate flags]
# Every movie is seeded (FIRST_SEED, FIRST_SEED+1, …) and its file name records its row, so a
# bundle's metadata (which lists its training movies by name) records the recipe.
# The seeds used (1001…, 2001…, 3001…) differ from the evaluation harness's (1, 2): its movies stay
# held out.

# Plain scenes (round somata) spread over photon levels (0.3–50 per pixel at a bright soma), frame
# sizes, frame rates (7.5–60 Hz: a transient lasts 4–60 frames), detector gains, offsets, read
# noise and cell densities. Seeds 1001–1016.
# shellcheck disable=SC2034 # used by name
plain_movies=(
  "0.3  160 160 640 30   2   100  2 40"
  "0.5  128 128 640 15   1   50   1 30"
  "0.5  192 144 512 60   4   200  3 50"
  "0.7  144 144 640 7.5  2   0    2 30"
  "1    128 128 768 30   3   100  2 30"
  "1    176 176 512 15   8   500  5 60"
  "1.5  160 128 640 60   2   100  0 35"
  "2    128 128 640 30   1   1000 1 20"
  "3    144 176 640 7.5  4   100  4 45"
  "5    128 128 640 30   2   100  2 30"
  "5    192 192 512 60   6   300  3 70"
  "8    160 160 640 15   2   100  2 40"
  "12   128 160 640 30   3   0    2 30"
  "20   144 144 640 7.5  2   100  2 35"
  "30   176 144 512 30   1   200  1 50"
  "50   128 128 640 60   2   100  2 25"
)

# Realistic scenes (`simulate --realistic`: dendrites, puncta, lobed and overlapping somata, vessel
# shadows, bleaching, drift and motion; two also one-photon-like, two with a fast indicator) and
# two more plain ones. Seeds 2001–2016.
# shellcheck disable=SC2034 # used by name
realistic_movies=(
  "0.3  160 160 512 30   2   100  2 40 --realistic"
  "0.5  144 144 512 15   1   50   1 35 --realistic"
  "0.7  160 128 512 7.5  2   0    2 30 --realistic"
  "1    176 176 512 30   3   100  2 50 --realistic"
  "1.5  128 160 512 60   2   100  0 30 --realistic"
  "2    160 160 512 15   4   300  3 45 --realistic"
  "3    144 144 512 30   1   1000 1 40 --realistic"
  "5    176 144 512 7.5  2   100  2 35 --realistic"
  "10   160 160 512 30   6   200  4 50 --realistic"
  "30   144 176 512 60   2   100  2 40 --realistic"
  "1    160 160 512 15   2   100  2 40 --realistic --one-photon"
  "5    144 144 512 30   2   100  2 35 --realistic --one-photon"
  "2    144 144 512 30   2   100  2 35 --realistic --indicator fast"
  "8    128 128 512 60   3   100  2 30 --realistic --indicator fast"
  "1    144 144 512 30   2   100  2 35"
  "12   160 144 512 7.5  3   0    2 40"
)

# Very dim scenes, 0.03–0.2 photons per pixel at a bright soma (a real recording thinned to 1/20 of
# its photons has about 0.005–0.015 per pixel on average), mostly realistic, two without read noise
# (photon counting). Seeds 3001–3005.
# shellcheck disable=SC2034 # used by name
dim_movies=(
  "0.03 160 160 512 30   2   100  0 40 --realistic"
  "0.06 144 144 512 15   3   200  2 35 --realistic"
  "0.1  160 128 512 30   2   100  1 40 --realistic"
  "0.15 144 144 512 7.5  2   100  0 30"
  "0.2  160 160 512 30   4   100  3 45 --realistic --one-photon"
)

simulate_movies() {
  local deepcad="$1" dir="$2" seed="$3" table="$4"
  local -n rows="$table"
  local spec photons width height frames rate gain offset read_noise neurons extra kind name
  mkdir -p "$dir"
  for spec in "${rows[@]}"; do
    read -r photons width height frames rate gain offset read_noise neurons extra <<<"$spec"
    name="sim-$seed-${photons}photons-${width}x${height}x${frames}-${rate}Hz-gain${gain}-offset${offset}-read${read_noise}-${neurons}cells"
    # The plain table's names carry no scene kind (the shipped bundle's metadata lists them so).
    if [[ "$table" != plain_movies ]]; then
      kind="$(echo "${extra:-plain}" | tr -d ' -' | sed 's/indicatorfast/fast/')"
      name="$name-$kind"
    fi
    # shellcheck disable=SC2086 # the extra flags are words
    "$deepcad" simulate -q -o "$dir/$name.tif" --photons "$photons" --width "$width" \
      --height "$height" --frames "$frames" --frame-rate "$rate" --gain "$gain" --offset "$offset" \
      --read-noise "$read_noise" --neurons "$neurons" --seed "$seed" ${extra:-}
    seed=$((seed + 1))
  done
}
