// The page's words in Korean and English, and how elements take them: data-i18n (text), data-i18n-label
// (aria-label), data-i18n-alt (alt), with data-i18n-args (JSON) for the {placeholders}.
'use strict';

const TEXT = {
  en: {
    subtitle: 'Faces that do not exist, drawn by a neural network in your browser',
    lang_button: 'KO', lang_label: 'Switch to Korean (한국어)',
    demo_title: 'Draw a face', brush: 'Brush value',
    palette_hint: 'Each cell is one number of z. Click or drag to paint the brush value. With the keyboard: ' +
      'the arrow keys move between cells, Enter or Space paints.',
    palette_label: 'z palette, cell {i} of {n}, value {v}',
    face_label: 'The generated face',
    generate: 'Generate', random: 'Random face',
    strip_title: 'Faces drawn so far',
    strip_hint: 'Hover or focus a face to see its z; click it (or press Enter) to copy its z into the palette.',
    strip_face: 'Face {n}: copy its z into the palette',
    walk_title: 'Walk between two faces', set_a: 'A ← palette', set_b: 'B ← palette',
    face_a: 'Face A, where the walk starts', face_b: 'Face B, where the walk ends', walk_slider: 'From face A to face B',
    dims_title: 'Every number of z', backend: 'Backend',
    about_title: 'How it works',
    about_1: 'A deep convolutional generative adversarial network (DCGAN) learns from tens of thousands of aligned face ' +
      'photos. Two networks train against each other: the discriminator tells real photos from generated ones, and the ' +
      'generator learns to fool it.',
    about_2: 'The generator turns z, a short list of random numbers (the palette above), into an image: a linear layer ' +
      'makes a small 4×4 map of features, and four transposed convolutions, each with batch normalisation and ReLU, ' +
      'double its size up to the final face. Nearby z give similar faces, so faces change smoothly as you walk through z.',
    about_3: 'This page runs that generator in your browser with TensorFlow.js, with the weights it learned (batch ' +
      'normalisation uses the statistics gathered during training). Nothing is sent to a server.',
    progress_title: 'How it learned', average_title: 'The average face',
    walk_fig_title: 'Walking through z', change_title: 'Changing one number of z',
    turing_title: 'Turing test: real or generated?',
    turing_hint: 'Real photos and generated faces are mixed below. Click the picture to reveal which is which.',
    reveal: 'Reveal the answer', hide: 'Hide the answer', other_title: 'More figures',
    footer: "A TensorFlow 2 / Keras 3 re-implementation of carpedm20's Neural Face.",
    code_link: 'The code of this page', original_link: 'The original',
    loading: 'Loading the model…', loading_bytes: 'Loading the model ({mb} MB)…',
    loaded: 'Model loaded in {load} ms ({backend}).', timing: '{h}×{w} · last face drawn in {draw} ms',
    failed: 'The model could not be loaded: {error}',
    play: 'Play', pause: 'Pause', show_animation: 'Show the animation', epoch_label: 'Epoch {epoch}',
    epoch_slider: 'Epoch of the training movie', details: 'Details:',
    // Figure captions, by the figure's name in figures.json.
    fig_training_epochs: 'The same faces, each from one fixed z, at the end of epochs {first}–{last} of training: ' +
      'blurry blobs become faces.',
    fig_training_progression: 'The same faces, each from one fixed z, drawn again and again while the generator ' +
      'trains.',
    fig_average_face: 'The average face: what the generator draws from its first layer averaged over 4,096 random z.',
    fig_random_walk: 'Each face moves one number of z: from the middle to one end, to the other end, and back.',
    fig_change: 'The numbers of z that change “{measure}” most. Each row moves one number from low to high.',
    fig_change_smile: 'The numbers of z that change the smile most. Each row moves one number from low to high.',
    fig_change_mouth_open: 'The numbers of z that open the mouth most. Each row moves one number from low to high.',
    fig_change_yaw: 'The numbers of z that turn the head most. Each row moves one number from low to high.',
    fig_change_saturation: 'The numbers of z that change the colour most. Each row moves one number from low to high.',
    fig_change_top: 'The numbers of z with the strongest effect, each row labelled with what it changes most.',
    fig_direction: 'Every number of z moved together, along the direction that changes “{measure}” most. Each row is one face.',
    fig_turing_test: 'Real photos and generated faces, shuffled. Which are real?',
    fig_turing_key: 'The answer: R marks a real photo, G a generated face.',
    fig_option0: 'Random faces, each from its own random z.',
    fig_option1: 'Random faces in which one number of z goes from low to high across the grid.',
    fig_option2: 'A face near the middle of z while one of its numbers moves from low to high.',
    fig_option3: 'The face at z = 0 while one number of z moves from low to high.',
    fig_option4: 'Many numbers of z moving together, back and forth.',
    fig_interpolation_linear: 'From one face to another in small steps along a straight line in z.',
    fig_interpolation_slerp: 'From one face to another along an arc in z instead of a straight line.',
    fig_turn_vector: 'Turning the head: new faces with more and more of a “turn” direction in z added, left to right.',
    fig_vector_arithmetic: 'Arithmetic with faces: a smiling face, minus a neutral face, plus another neutral ' +
      'face gives a new smiling face.',
    fig_nearest_neighbours: 'Did it copy its training photos? Each generated face beside the most similar training ' +
      'photo, next to real photos it never saw and their closest training photos.',
  },
  ko: {
    subtitle: '세상에 없는 얼굴을 신경망이 브라우저에서 직접 그립니다',
    lang_button: 'EN', lang_label: '영어로 보기 (English)',
    demo_title: '얼굴 그리기', brush: '붓 값',
    palette_hint: '칸 하나가 z의 숫자 하나입니다. 클릭하거나 드래그해서 붓 값을 칠하세요. 키보드로는 화살표 키로 칸을 옮기고 ' +
      'Enter나 스페이스로 칠합니다.',
    palette_label: 'z 팔레트, {n}칸 중 {i}번째 칸, 값 {v}',
    face_label: '생성된 얼굴',
    generate: '생성', random: '무작위 얼굴',
    strip_title: '지금까지 그린 얼굴',
    strip_hint: '얼굴 위에 마우스를 올리거나 초점을 두면 z가 보이고, 클릭하거나 Enter를 누르면 그 z가 팔레트로 복사됩니다.',
    strip_face: '얼굴 {n}: z를 팔레트로 복사',
    walk_title: '두 얼굴 사이 걷기', set_a: 'A ← 팔레트', set_b: 'B ← 팔레트',
    face_a: '얼굴 A, 걷기의 시작', face_b: '얼굴 B, 걷기의 끝', walk_slider: '얼굴 A에서 얼굴 B까지',
    dims_title: 'z의 모든 숫자', backend: '백엔드',
    about_title: '작동 원리',
    about_1: 'DCGAN(심층 합성곱 생성적 적대 신경망)이 정렬된 얼굴 사진 수만 장으로 학습합니다. 두 신경망이 서로 경쟁합니다. ' +
      '판별자는 진짜 사진과 생성된 사진을 구별하고, 생성자는 판별자를 속이도록 배웁니다.',
    about_2: '생성자는 z(위 팔레트의 짧은 난수 목록)를 이미지로 바꿉니다. 선형 층이 작은 4×4 특징 맵을 만들고, 배치 정규화와 ' +
      'ReLU가 붙은 네 개의 전치 합성곱이 크기를 두 배씩 키워 얼굴을 완성합니다. 가까운 z는 비슷한 얼굴을 만들기 때문에 z를 따라 ' +
      '걸으면 얼굴이 부드럽게 바뀝니다.',
    about_3: '이 페이지는 학습된 가중치로 그 생성자를 TensorFlow.js로 브라우저에서 직접 실행합니다(배치 정규화는 학습 중 모은 ' +
      '통계를 씁니다). 서버로 아무것도 보내지 않습니다.',
    progress_title: '학습 과정', average_title: '평균 얼굴',
    walk_fig_title: 'z 공간 걷기', change_title: 'z의 숫자 하나 바꾸기',
    turing_title: '튜링 테스트: 진짜일까, 생성된 것일까?',
    turing_hint: '아래에 진짜 사진과 생성된 얼굴이 섞여 있습니다. 그림을 클릭하면 정답이 보입니다.',
    reveal: '정답 보기', hide: '정답 숨기기', other_title: '다른 그림',
    footer: 'carpedm20의 Neural Face를 TensorFlow 2 / Keras 3로 다시 구현했습니다.',
    code_link: '이 페이지의 코드', original_link: '원본',
    loading: '모델을 불러오는 중…', loading_bytes: '모델을 불러오는 중 ({mb} MB)…',
    loaded: '모델 로딩 {load} ms ({backend}).', timing: '{h}×{w} · 마지막 얼굴 그리기 {draw} ms',
    failed: '모델을 불러올 수 없습니다: {error}',
    play: '재생', pause: '일시 정지', show_animation: '움직이는 그림 보기', epoch_label: '{epoch}번째 에폭',
    epoch_slider: '학습 영상의 에폭', details: '자세히:',
    fig_training_epochs: '학습 {first}–{last}번째 에폭이 끝날 때마다 같은 z로 그린 얼굴들입니다. 흐릿한 얼룩이 점점 ' +
      '얼굴이 됩니다.',
    fig_training_progression: '생성자가 학습하는 동안 같은 z로 계속 다시 그린 얼굴들입니다.',
    fig_average_face: '평균 얼굴: 무작위 z 4,096개에서 생성자의 첫 층을 평균 내어 그린 얼굴입니다.',
    fig_random_walk: '얼굴마다 z의 숫자 하나가 움직입니다. 가운데에서 한쪽 끝으로, 반대쪽 끝으로 갔다가 돌아옵니다.',
    fig_change: '“{measure}”을(를) 가장 많이 바꾸는 z의 숫자들입니다. 각 줄은 숫자 하나를 낮은 값에서 높은 값으로 바꿉니다.',
    fig_change_smile: '미소를 가장 많이 바꾸는 z의 숫자들입니다. 각 줄은 숫자 하나를 낮은 값에서 높은 값으로 바꿉니다.',
    fig_change_mouth_open: '입을 가장 많이 벌리게 하는 z의 숫자들입니다. 각 줄은 숫자 하나를 낮은 값에서 높은 값으로 ' +
      '바꿉니다.',
    fig_change_yaw: '고개를 가장 많이 돌리는 z의 숫자들입니다. 각 줄은 숫자 하나를 낮은 값에서 높은 값으로 바꿉니다.',
    fig_change_saturation: '색감을 가장 많이 바꾸는 z의 숫자들입니다. 각 줄은 숫자 하나를 낮은 값에서 높은 값으로 바꿉니다.',
    fig_change_top: '효과가 가장 큰 z의 숫자들입니다. 줄마다 그 숫자가 가장 많이 바꾸는 것을 적었습니다.',
    fig_direction: 'z의 모든 숫자를 “{measure}”을(를) 가장 많이 바꾸는 방향으로 함께 움직입니다. 각 줄은 얼굴 하나입니다.',
    fig_turing_test: '진짜 사진과 생성된 얼굴을 섞어 놓았습니다. 어느 것이 진짜일까요?',
    fig_turing_key: '정답: R은 진짜 사진, G는 생성된 얼굴입니다.',
    fig_option0: '무작위 얼굴들입니다. 얼굴마다 무작위 z가 하나씩 있습니다.',
    fig_option1: '무작위 얼굴들에서 z의 숫자 하나가 격자를 따라 낮은 값에서 높은 값으로 바뀝니다.',
    fig_option2: 'z 가운데 근처의 얼굴에서 숫자 하나가 낮은 값에서 높은 값으로 움직입니다.',
    fig_option3: 'z = 0의 얼굴에서 z의 숫자 하나가 낮은 값에서 높은 값으로 움직입니다.',
    fig_option4: 'z의 여러 숫자가 함께 앞뒤로 움직입니다.',
    fig_interpolation_linear: 'z 공간의 직선을 따라 한 얼굴에서 다른 얼굴로 조금씩 옮겨 갑니다.',
    fig_interpolation_slerp: 'z 공간에서 직선 대신 호를 따라 한 얼굴에서 다른 얼굴로 옮겨 갑니다.',
    fig_turn_vector: '고개 돌리기: 새 얼굴에 z의 “돌리기” 방향을 왼쪽에서 오른쪽으로 갈수록 더 많이 더했습니다.',
    fig_vector_arithmetic: '얼굴 계산: 웃는 얼굴에서 무표정한 얼굴을 빼고 다른 무표정한 얼굴을 더하면 새로운 웃는 얼굴이 ' +
      '됩니다.',
    fig_nearest_neighbours: '학습 사진을 베낀 걸까요? 생성된 얼굴마다 가장 닮은 학습 사진을 옆에 두고, 학습에 쓰지 않은 ' +
      '진짜 사진과 그 사진에 가장 닮은 학습 사진을 함께 보였습니다.',
  },
};

const i18n = {lang: 'en'};

function t(key, args = {}) {
  const s = (TEXT[i18n.lang] && TEXT[i18n.lang][key]) || TEXT.en[key] || key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in args ? args[k] : `{${k}}`));
}

function textArgs(el) {
  return el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : {};
}

// Give el its words (kinds: {text, label, alt}: TEXT keys) and keep them following the language.
function localize(el, kinds, args = null) {
  if (args) el.dataset.i18nArgs = JSON.stringify(args);
  if (kinds.text) el.dataset.i18n = kinds.text;
  if (kinds.label) el.dataset.i18nLabel = kinds.label;
  if (kinds.alt) el.dataset.i18nAlt = kinds.alt;
  applyText(el);
  return el;
}

// Fill every localised element under root (root itself included) in the current language.
function applyText(root = document) {
  const all = (sel) => [...(root.matches && root.matches(sel) ? [root] : []), ...root.querySelectorAll(sel)];
  for (const el of all('[data-i18n]')) el.textContent = t(el.dataset.i18n, textArgs(el));
  for (const el of all('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel, textArgs(el)));
  for (const el of all('[data-i18n-alt]')) el.alt = t(el.dataset.i18nAlt, textArgs(el));
}
