"""Face alignment: openface's 68-landmark template affine, and dlib's 5-point face chip, as 2x3 pixel transforms."""
import cv2
import dlib
import numpy as np

# openface's mean dlib landmarks (openface/align_dlib.py, Apache-2.0, CMU), rescaled to [0, 1] (MINMAX_TEMPLATE).
TEMPLATE = np.float32([
    (0.0792396913815, 0.339223741112), (0.0829219487236, 0.456955367943),
    (0.0967927109165, 0.575648016728), (0.122141515615, 0.691921601066),
    (0.168687863544, 0.800341263616), (0.239789390707, 0.895732504778),
    (0.325662452515, 0.977068762493), (0.422318282013, 1.04329000149),
    (0.531777802068, 1.06080371126), (0.641296298053, 1.03981924107),
    (0.738105872266, 0.972268833998), (0.824444363295, 0.889624082279),
    (0.894792677532, 0.792494155836), (0.939395486253, 0.681546643421),
    (0.96111933829, 0.562238253072), (0.970579841181, 0.441758925744),
    (0.971193274221, 0.322118743967), (0.163846223133, 0.249151738053),
    (0.21780354657, 0.204255863861), (0.291299351124, 0.192367318323),
    (0.367460241458, 0.203582210627), (0.4392945113, 0.233135599851),
    (0.586445962425, 0.228141644834), (0.660152671635, 0.195923841854),
    (0.737466449096, 0.182360984545), (0.813236546239, 0.192828009114),
    (0.8707571886, 0.235293377042), (0.51534533827, 0.31863546193),
    (0.516221448289, 0.396200446263), (0.517118861835, 0.473797687758),
    (0.51816430343, 0.553157797772), (0.433701156035, 0.604054457668),
    (0.475501237769, 0.62076344024), (0.520712933176, 0.634268222208),
    (0.565874114041, 0.618796581487), (0.607054002672, 0.60157671656),
    (0.252418718401, 0.331052263829), (0.298663015648, 0.302646354002),
    (0.355749724218, 0.303020650651), (0.403718978315, 0.33867711083),
    (0.352507175597, 0.349987615384), (0.296791759886, 0.350478978225),
    (0.631326076346, 0.334136672344), (0.679073381078, 0.29645404267),
    (0.73597236153, 0.294721285802), (0.782865376271, 0.321305281656),
    (0.740312274764, 0.341849376713), (0.68499850091, 0.343734332172),
    (0.353167761422, 0.746189164237), (0.414587777921, 0.719053835073),
    (0.477677654595, 0.706835892494), (0.522732900812, 0.717092275768),
    (0.569832064287, 0.705414478982), (0.635195811927, 0.71565572516),
    (0.69951672331, 0.739419187253), (0.639447159575, 0.805236879972),
    (0.576410514055, 0.835436670169), (0.525398405766, 0.841706377792),
    (0.47641545769, 0.837505914975), (0.41379548902, 0.810045601727),
    (0.380084785646, 0.749979603086), (0.477955996282, 0.74513234612),
    (0.523389793327, 0.748924302636), (0.571057789237, 0.74332894691),
    (0.672409137852, 0.744177032192), (0.572539621444, 0.776609286626),
    (0.5240106503, 0.783370783245), (0.477561227414, 0.778476346951)])
MINMAX_TEMPLATE = (TEMPLATE - TEMPLATE.min(axis=0)) / (TEMPLATE.max(axis=0) - TEMPLATE.min(axis=0))

# The three landmarks openface maps exactly onto the template (dlib's 68-point numbering).
LANDMARK_SETS = {
    "outer_eyes_and_nose": [36, 45, 33],
    "inner_eyes_and_bottom_lip": [39, 42, 57],
}


def template_points(size, padding):
    """The 68 template landmarks in pixels of a size x size crop with `padding` (fraction of the face) per side."""
    return (MINMAX_TEMPLATE + padding) / (1.0 + 2.0 * padding) * size


def openface_transform(points68, size, padding=0.0, landmarks="outer_eyes_and_nose"):
    """openface's AlignDlib.align: the affine map taking three landmarks exactly onto the template."""
    idx = LANDMARK_SETS[landmarks]
    return cv2.getAffineTransform(np.float32(points68[idx]), np.float32(template_points(size, padding)[idx]))


def chip_transform(rect, points5, size, padding=0.25):
    """dlib's get_face_chip as an affine map: a similarity of the 5 landmarks onto dlib's mean face."""
    shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in points5])
    d = dlib.get_face_chip_details(shape, size, padding)
    r, a = d.rect, d.angle
    center = np.array([(r.left() + r.right()) / 2.0, (r.top() + r.bottom()) / 2.0])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = [(r.left(), r.top()), (r.right(), r.top()), (r.right(), r.bottom())]
    src = np.float32([rot @ (np.array(p) - center) + center for p in corners])
    dst = np.float32([(0, 0), (d.cols - 1, 0), (d.cols - 1, d.rows - 1)])
    return cv2.getAffineTransform(src, dst)


def warp(image_rgb, matrix, size):
    """Apply a 2x3 transform to get a size x size crop; pixels from outside the photo repeat its border."""
    scale = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if scale < 0.5:  # bilinear sampling has no area filter: low-pass big faces first so their crops do not alias
        image_rgb = cv2.GaussianBlur(image_rgb, (0, 0), sigmaX=0.5 / scale)
    return cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def apply(matrix, points):
    """Map (N, 2) points through a 2x3 transform."""
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def outside_fraction(matrix, size, image_shape):
    """Fraction of the crop's pixels that fall outside the source photo (filled by border repetition)."""
    inverse = cv2.invertAffineTransform(matrix)
    ys, xs = np.mgrid[0:size:4, 0:size:4]
    src = apply(inverse, np.stack([xs.ravel(), ys.ravel()], axis=1))
    h, w = image_shape[:2]
    inside = (src[:, 0] >= 0) & (src[:, 0] <= w - 1) & (src[:, 1] >= 0) & (src[:, 1] <= h - 1)
    return float(1.0 - inside.mean())
