"""A recommender that logs each user's top-N items as a table, then previews the table.

    python examples/recommender_top_n.py

Matrix factorisation of a small synthetic ratings matrix, trained by alternating least squares;
``log_table`` stores the recommendations as a table artifact of the run, and
``sagerun table RUN NAME`` prints its first rows without reading the rest.
"""

import os
import subprocess
import sys

import anyio
import numpy as np

import sagerun

USERS, ITEMS, FACTORS, TOP_N = 200, 120, 8, 5


def synthetic_ratings(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ratings from hidden user and item factors; about 15 % of them observed."""
    truth = rng.normal(size=(USERS, FACTORS)) @ rng.normal(size=(FACTORS, ITEMS))
    observed = rng.random((USERS, ITEMS)) < 0.15
    return truth + rng.normal(scale=0.3, size=truth.shape), observed


def solve(fixed: np.ndarray, ratings: np.ndarray, observed: np.ndarray, l2: float) -> np.ndarray:
    """One half of an ALS sweep: the best factors of each row given the other side's factors."""
    result = np.empty((ratings.shape[0], fixed.shape[1]))
    for row in range(ratings.shape[0]):
        seen = observed[row]
        a = fixed[seen].T @ fixed[seen] + l2 * np.eye(fixed.shape[1])
        result[row] = np.linalg.solve(a, fixed[seen].T @ ratings[row, seen])
    return result


async def main() -> None:
    rng = np.random.default_rng(7)
    ratings, observed = synthetic_ratings(rng)
    users, items = rng.normal(scale=0.1, size=(USERS, FACTORS)), rng.normal(scale=0.1, size=(ITEMS, FACTORS))
    l2 = 0.5

    session = sagerun.Session(backend=os.environ.get("SAGERUN_BACKEND", "local"))
    async with sagerun.Run(experiment_name="recommender", run_name="als-top5", session=session) as run:
        run.log_parameters({"factors": FACTORS, "l2": l2, "top_n": TOP_N, "users": USERS, "items": ITEMS})
        for sweep in range(10):
            users = solve(items, ratings, observed, l2)
            items = solve(users, ratings.T, observed.T, l2)
            error = (users @ items.T - ratings)[observed]
            await run.log_metric("train:rmse", float(np.sqrt((error ** 2).mean())), step=sweep)

        scores = users @ items.T
        scores[observed] = -np.inf                        # recommend only items the user has not rated
        top = np.argsort(-scores, axis=1)[:, :TOP_N]
        table = {
            "user": np.repeat(np.arange(USERS), TOP_N).tolist(),
            "rank": np.tile(np.arange(1, TOP_N + 1), USERS).tolist(),
            "item": top.reshape(-1).tolist(),
            "score": np.round(np.take_along_axis(scores, top, axis=1).reshape(-1), 3).tolist(),
        }
        uri = await run.log_table("top-5", table)
        print(f"logged {len(table['user'])} recommendations to {uri}")

    # Preview the first rows, as you would from a shell: sagerun table recommender/als-top5 top-5 --rows 8
    subprocess.run([sys.executable, "-m", "sagerun", "table", "recommender/als-top5", "top-5", "--rows", "8"],
                   check=True)


if __name__ == "__main__":
    anyio.run(main)
