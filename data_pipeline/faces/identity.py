"""Person ids from dlib's ResNet face descriptor, so a person keeps one id across gaps and shot cuts.

dlib's `dlib_face_recognition_resnet_model_v1.dat` (shipped in
face-recognition-models) maps an aligned face to a 128-d descriptor; two
faces of the same person are within 0.6 (Euclidean) of each other on LFW
(99.38 % accuracy at that threshold, dlib's documentation). A face is given
the id of the person whose mean descriptor is nearest, if within
`max_distance`, else a new id. Ids count from 0 in order of first appearance.
Banks of consecutive chunks of one video join by `absorb` (`face_pass.merge`).
"""

from typing import List, Tuple

import numpy as np


class IdentityBank:
    """The persons seen so far in one video, each a running mean of its descriptors."""

    def __init__(self, max_distance: float = 0.6):
        self.max_distance = max_distance
        self._sums: List[np.ndarray] = []
        self._counts: List[int] = []
        self._model = None

    def descriptor(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The 128-d descriptor of the face with these (68, 2) landmarks in a uint8 RGB image."""
        import dlib

        if self._model is None:
            import face_recognition_models

            self._model = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
        x0, y0 = points.min(0)
        x1, y1 = points.max(0)
        shape = dlib.full_object_detection(
            dlib.rectangle(int(x0), int(y0), int(x1), int(y1)),
            [dlib.point(int(round(x)), int(round(y))) for x, y in points])
        return np.array(self._model.compute_face_descriptor(np.ascontiguousarray(image), shape), np.float64)

    def _centres(self) -> np.ndarray:
        return np.stack([s / c for s, c in zip(self._sums, self._counts)])

    def identify(self, image: np.ndarray, points: np.ndarray, exclude=()) -> int:
        """The id of this face's person (a new id for a new person); updates that person.

        `exclude`: persons already seen elsewhere in the same frame (one person
        is never two faces of one frame).
        """
        vector = self.descriptor(image, points)
        if self._sums:
            distances = np.linalg.norm(self._centres() - vector, axis=1)
            distances[list(exclude)] = np.inf
            best = int(np.argmin(distances))
            if distances[best] <= self.max_distance:
                self._sums[best] += vector
                self._counts[best] += 1
                return best
        self._sums.append(vector.copy())
        self._counts.append(1)
        return len(self._sums) - 1

    def verify(self, image: np.ndarray, points: np.ndarray, person: int) -> bool:
        """Is this face (followed as `person`) still that person? If so, it joins its mean."""
        vector = self.descriptor(image, points)
        if np.linalg.norm(self._sums[person] / self._counts[person] - vector) > self.max_distance:
            return False
        self._sums[person] += vector
        self._counts[person] += 1
        return True

    def state(self) -> Tuple[List[np.ndarray], List[int]]:
        """(descriptor sums, counts) per person: what `absorb` takes (picklable, unlike the bank)."""
        return [s.copy() for s in self._sums], list(self._counts)

    def absorb(self, sums: List[np.ndarray], counts: List[int]) -> List[int]:
        """Join the persons of another bank's `state` (a later chunk of the same video) -> their ids here.

        Each is matched to the nearest person here not already matched (one
        person is never two of the other bank's), if within `max_distance`,
        else added as a new person; pairs are taken nearest first.
        """
        ids = [-1] * len(sums)
        if self._sums and sums:
            theirs = np.stack([s / c for s, c in zip(sums, counts)])
            distances = np.linalg.norm(theirs[:, None] - self._centres()[None], axis=2)
            for flat in np.argsort(distances, axis=None):
                mine, ours = divmod(int(flat), distances.shape[1])
                if distances[mine, ours] > self.max_distance:
                    break
                if ids[mine] < 0 and ours not in ids:
                    ids[mine] = ours
            for mine, ours in enumerate(ids):
                if ours >= 0:
                    self._sums[ours] = self._sums[ours] + sums[mine]
                    self._counts[ours] += counts[mine]
        for mine in range(len(sums)):
            if ids[mine] < 0:
                self._sums.append(np.array(sums[mine], np.float64))
                self._counts.append(int(counts[mine]))
                ids[mine] = len(self._sums) - 1
        return ids

    @property
    def persons(self) -> int:
        return len(self._sums)
